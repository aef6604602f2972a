"""Per-settlement checkpoints, signed so that only this user's own runs are ever loaded.

An interrupted plan resumes from the settlements it finished: each one's outcome is
kept in the checkpoint folder as a pickle. A pickle can run code when it is loaded, so
a checkpoint is loaded only when it carries a valid HMAC-SHA256 signature made with
this user's checkpoint key, which lives outside any checkpoint folder (see
:func:`key_path`, created readable by its owner only). The signature, the task's name
and its fingerprint are all checked before a single byte is unpickled: a checkpoint
planted by someone else, or made from other inputs, is never loaded, only planned
again.

A checkpoint folder is the tool's own: it is created with a marker file
(:data:`MARKER`), and an existing folder without one that holds anything is refused.
Clearing it removes only checkpoints signed with this key and the marker; any other
file stays, and so does the folder then.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import pickle
import secrets
import stat
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from districting.errors import InputFileError
from districting.outputs.folders import child
from districting.settlement import SettlementOutcome, SettlementTask

logger = logging.getLogger(__name__)

#: The first line of every checkpoint file; raised whenever the outcome changes shape.
CHECKPOINT_FORMAT = "districting-checkpoint/3"
CHECKPOINT_SUFFIX = ".pkl"
#: The file that marks a folder as the tool's own checkpoint folder.
MARKER = "districting-checkpoints.json"
#: The environment variable that names the key file (default: see :func:`key_path`).
KEY_ENV = "DISTRICTING_CHECKPOINT_KEY"
KEY_BYTES = 32
#: A checkpoint's header line is at most this long.
MAX_HEADER = 4096


def key_path() -> Path:
    """Where this user's checkpoint key lives: ``$DISTRICTING_CHECKPOINT_KEY``, else
    ``$XDG_CONFIG_HOME/districting/checkpoint.key`` (``~/.config`` by default)."""
    named = os.environ.get(KEY_ENV)
    if named:
        return Path(named)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "districting" / "checkpoint.key"


def load_or_create_key(path: Path | None = None) -> bytes:
    """The checkpoint key, created (random, mode 600) on first use.

    A key file that others may read or write, or that is not a plain file, is refused:
    whoever can read it can sign a checkpoint that runs code when resumed.
    """
    path = path or key_path()
    try:
        if not path.exists() and not path.is_symlink():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, name = tempfile.mkstemp(prefix=".checkpoint.key.", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(secrets.token_hex(KEY_BYTES) + "\n")
                os.link(name, path)  # fails if another run created the key meanwhile
            except FileExistsError:
                pass
            finally:
                Path(name).unlink(missing_ok=True)
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"the checkpoint key {path} is not a plain file")
        if info.st_mode & 0o077:
            raise InputFileError(f"the checkpoint key {path} may be read or changed by other "
                                 f"users; run 'chmod 600 {path}' (or delete it: a new key "
                                 "is made, and existing checkpoints are planned again)")
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except InputFileError:
        raise
    except OSError as exc:
        raise InputFileError(f"cannot use the checkpoint key {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise InputFileError(f"the checkpoint key {path} is not hexadecimal text; delete it "
                             "to make a new one") from None
    if len(key) < 16:
        raise InputFileError(f"the checkpoint key {path} is too short; delete it to make a "
                             "new one")
    return key


def _signature(key: bytes, name: str, fingerprint: str, payload: bytes) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in (CHECKPOINT_FORMAT.encode(), name.encode(), fingerprint.encode()):
        mac.update(len(part).to_bytes(8, "big") + part)
    mac.update(payload)
    return mac.hexdigest()


class Checkpoints:
    """A folder of signed per-settlement checkpoints (see the module docstring)."""

    def __init__(self, folder: Path, *, key: bytes | None = None) -> None:
        self.folder = Path(folder)
        self._key = key

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = load_or_create_key()
        return self._key

    def path(self, name: str) -> Path:
        """The checkpoint of a task (see :attr:`SettlementTask.key`)."""
        return child(self.folder, name, what="settlement key", suffix=CHECKPOINT_SUFFIX)

    def check(self) -> None:
        """Refuse a folder that is not the tool's own and holds files of others."""
        folder = self.folder
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise InputFileError(f"the checkpoint path {folder} exists and is not a folder")
        if folder.is_dir() and not (folder / MARKER).is_file() and any(folder.iterdir()):
            raise InputFileError(
                f"the checkpoint folder {folder} holds files that districting did not "
                f"write (it has no {MARKER}); choose a new or empty folder")

    def claim(self) -> None:
        """Make the folder the tool's own (see :meth:`check`), and have the key ready."""
        self.check()
        folder, marker = self.folder, self.folder / MARKER
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not marker.is_file():
                marker.write_text(json.dumps({"format": CHECKPOINT_FORMAT}) + "\n",
                                  encoding="utf-8")
        except OSError as exc:
            raise InputFileError(f"cannot create the checkpoint folder {folder}: "
                                 f"{exc.strerror}") from None
        if self._key is None:  # made or checked now, not after the first settlement
            self._key = load_or_create_key()

    def save(self, outcome: SettlementOutcome) -> None:
        """Write one settlement's outcome atomically, signed, with its task's fingerprint."""
        self.claim()
        target = self.path(outcome.key)
        payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        header = json.dumps({"key": outcome.key, "fingerprint": outcome.fingerprint,
                             "bytes": len(payload),
                             "hmac": _signature(self.key, outcome.key, outcome.fingerprint,
                                                payload)})
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(f"{CHECKPOINT_FORMAT}\n{header}\n".encode())
                handle.write(payload)
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def _read(self, path: Path, *, name: str | None) -> tuple[dict[str, Any], bytes] | None:
        """A checkpoint's header and payload if it is signed with this key (and, given
        ``name``, is that task's); ``None`` otherwise. Nothing is unpickled here."""
        try:
            with path.open("rb") as handle:
                if handle.readline(MAX_HEADER).rstrip(b"\n") != CHECKPOINT_FORMAT.encode():
                    return None
                header = json.loads(handle.readline(MAX_HEADER))
                payload = handle.read(int(header["bytes"]) + 1)
            signed = _signature(self.key, str(header["key"]), str(header["fingerprint"]),
                                payload)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if not isinstance(header, dict) or len(payload) != header["bytes"]:
            return None
        if not hmac.compare_digest(signed, str(header.get("hmac", ""))):
            return None
        if name is not None and header["key"] != name:
            return None
        return header, payload

    def load(self, tasks: Sequence[SettlementTask]) -> dict[str, SettlementOutcome]:
        """The checkpointed outcomes (by task key) whose fingerprint matches the task's now.

        A checkpoint that is unsigned, signed with another key, or made from other
        inputs is never unpickled (and said so): that settlement is planned again.
        """
        found: dict[str, SettlementOutcome] = {}
        if not self.folder.is_dir():
            return found
        for task in tasks:
            path = self.path(task.key)
            if not path.is_file():
                continue
            read = self._read(path, name=task.key)
            if read is None:
                logger.warning("checkpoint %s is not signed with this user's checkpoint key "
                               "(not written by this user's runs, or damaged); planning it "
                               "again", path)
                continue
            header, payload = read
            if header["fingerprint"] != task.fingerprint():
                logger.warning("checkpoint %s was made from other inputs, norms or version; "
                               "planning it again", path)
                continue
            outcome = pickle.loads(payload)  # signed with this user's key: our own bytes
            if not isinstance(outcome, SettlementOutcome):
                logger.warning("checkpoint %s holds no settlement; planning it again", path)
                continue
            found[task.key] = outcome
        return found

    def clear(self, names: Iterable[str] | None = None) -> None:
        """Remove the checkpoints signed with this key (of ``names`` only, if given), the
        marker, and the folder if nothing else is left in it."""
        folder = self.folder
        if folder.is_symlink() or not (folder / MARKER).is_file():
            return
        wanted = None if names is None else set(names)
        for path in sorted(folder.glob(f"*{CHECKPOINT_SUFFIX}")):
            if path.is_symlink() or not path.is_file():
                continue
            read = self._read(path, name=None)
            if read is not None and (wanted is None or read[0]["key"] in wanted):
                path.unlink(missing_ok=True)
        if not any(p.name != MARKER for p in folder.iterdir()):
            (folder / MARKER).unlink(missing_ok=True)
            with suppress(OSError):  # someone's file arrived meanwhile: the folder stays
                folder.rmdir()
