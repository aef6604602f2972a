"""Log how long each stage of a run takes (INFO), so a slow run says where its time went."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("districting.timing")


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log ``name`` and the seconds the enclosed block took, once it is done."""
    started = time.monotonic()
    yield
    log_stage(name, time.monotonic() - started)


def log_stage(name: str, seconds: float) -> None:
    """Log that stage ``name`` took ``seconds`` (for a stage timed in parts)."""
    logger.info("%s: %.1f s", name, seconds)
