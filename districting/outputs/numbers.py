"""Numbers as readers expect them: thousands grouped, and Russian or English decimals."""

from __future__ import annotations

import math
from typing import Any


def as_number(value: Any) -> float | None:
    """A float, or ``None`` for a missing or non-numeric value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def localise(text: str, lang: str) -> str:
    """Russian number style: a no-break space groups thousands, a comma marks decimals."""
    if lang != "ru":
        return text
    return text.replace(",", "\u00a0").replace(".", ",")


def whole(value: Any, lang: str) -> str:
    """A whole number with grouped thousands, or "—" when missing."""
    number = as_number(value)
    return "—" if number is None else localise(f"{round(number):,}", lang)
