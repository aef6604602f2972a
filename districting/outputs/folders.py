"""Folders the tool owns: built atomically, listed in a manifest, replaced only when ours.

Every folder the tool writes (a plan, a dedup, a follow-up, a progress report) is
built in a hidden staging folder beside its target and moved into place only once it
is complete, with ``manifest.json``: the kind of output and every file's size and
SHA-256. An existing folder is replaced only when it is recognisably an earlier
output of the same kind: its manifest says so, and it holds exactly the files the
manifest lists, unchanged. A folder with a file the tool did not write (a signed
scan, a planner's edit of ``plan.gpkg``, a home folder's documents) is refused, and
the refusal names those files; nothing is ever deleted that the tool did not write.

File names made from data (district codes, settlement keys) go through
:func:`safe_file_name`, so that no name can leave its folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from districting.errors import DistrictingError, FaultError, InputFileError, as_fault
from districting.interrupts import deferred

logger = logging.getLogger(__name__)

#: The manifest of an output folder (see the module docstring).
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "districting-manifest/1"
#: The kinds of output folder; each replaces only an earlier output of its own kind.
KINDS = ("plan", "dedup", "progress")
#: A file name made from data is at most this long (bytes, before its suffix).
MAX_NAME_BYTES = 120
#: At most this many offending files are named in a refusal.
NAMED_FILES = 5

_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|\x00-\x1f\x7f]")


def safe_file_name(name: str, *, what: str) -> str:
    """``name`` unchanged if it is safe as one file name in a folder, else a clear error.

    Safe means: not blank, not ``.`` or ``..``, not starting with a dot or a dash, no
    path separator, reserved or control character, and at most
    :data:`MAX_NAME_BYTES` bytes of UTF-8.
    """
    problem = ""
    if not name.strip():
        problem = "it is blank"
    elif name.startswith((".", "-")):
        problem = "it starts with '.' or '-'"
    elif _UNSAFE_NAME.search(name):
        problem = "it holds a path separator or a character not allowed in file names"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"it is longer than {MAX_NAME_BYTES} bytes"
    if problem:
        raise DistrictingError(f"the {what} {name[:80]!r} cannot be used as a file name: {problem}")
    return name


def child(folder: Path, name: str, *, what: str, suffix: str = "") -> Path:
    """The file ``name + suffix`` directly inside ``folder``; see :func:`safe_file_name`."""
    path = Path(folder) / f"{safe_file_name(name, what=what)}{suffix}"
    if path.parent != Path(folder):  # unreachable after the name check; kept as a guard
        raise DistrictingError(f"the {what} {name[:80]!r} would leave the folder {folder}")
    return path


# ---------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class Manifest:
    """What the tool wrote into a folder: its kind, and each file's size and SHA-256."""

    kind: str
    files: dict[str, tuple[int, str]]

    def to_json(self) -> str:
        return json.dumps({"format": MANIFEST_FORMAT, "kind": self.kind,
                           "files": {name: {"bytes": size, "sha256": digest}
                                     for name, (size, digest) in sorted(self.files.items())}},
                          ensure_ascii=False, indent=2) + "\n"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(folder: Path) -> tuple[list[str], list[str]]:
    """The regular files under ``folder`` (relative POSIX paths, sorted) and anything
    else found there (symbolic links, sockets): the tool writes only files and folders."""
    files: list[str] = []
    other: list[str] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in [*dirs, *names]:
            path = base / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                other.append(relative)
            elif name in names:
                (files if path.is_file() else other).append(relative)
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    return sorted(files), sorted(other)


def write_manifest(folder: Path, *, kind: str) -> Manifest:
    """List every file in ``folder`` (a finished output) in its :data:`MANIFEST`."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    files, _ = _walk(folder)
    manifest = Manifest(kind, {name: ((folder / name).stat().st_size, _sha256(folder / name))
                               for name in files if name != MANIFEST})
    (folder / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or ``None`` when it has none the tool could have written."""
    path = Path(folder) / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != MANIFEST_FORMAT or raw.get("kind") not in KINDS:
            return None
        files = {str(name): (int(entry["bytes"]), str(entry["sha256"]))
                 for name, entry in raw["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return Manifest(str(raw["kind"]), files)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:NAMED_FILES])
    more = len(names) - NAMED_FILES
    return shown + (f" (and {more} more)" if more > 0 else "")


def why_not_ours(folder: Path, *, kind: str) -> str | None:
    """Why ``folder`` may not be replaced by an output of ``kind``; ``None`` if it may.

    It may when it is empty, or holds exactly the files of its manifest, unchanged,
    and the manifest is of the same ``kind``.
    """
    files, other = _walk(folder)
    if not files and not other:
        return None
    manifest = read_manifest(folder)
    if manifest is None:
        return (f"it was not written by districting (it has no {MANIFEST}), so replacing it "
                "could delete files of yours")
    if manifest.kind != kind:
        return f"it holds a {manifest.kind} written by districting, not a {kind}"
    foreign = [name for name in files if name != MANIFEST and name not in manifest.files]
    foreign += other
    if foreign:
        return f"it holds files districting did not write: {_listing(sorted(foreign))}"
    changed = [name for name in files if name in manifest.files
               and ((folder / name).stat().st_size != manifest.files[name][0]
                    or _sha256(folder / name) != manifest.files[name][1])]
    if changed:
        return (f"these files were changed after districting wrote them: {_listing(changed)} "
                "(edited by hand?)")
    return None


# ---------------------------------------------------------------- replacing a folder


def check_output_folder(target: Path, protect: tuple[Path, ...] = (), *, kind: str) -> None:
    """Refuse, before any work, an output folder that must not be replaced.

    It must not be, hold or lie inside an input (``protect``), nor hold the working
    directory, and an existing folder must be empty or an earlier output of ``kind``
    (see :func:`why_not_ours`).
    """
    target = Path(target).resolve()
    for path in protect:
        resolved = Path(path).resolve()
        if resolved.is_dir() and (resolved == target or resolved in target.parents):
            where = "is" if resolved == target else "lies inside"
            raise InputFileError(
                f"output folder {target} {where} the input folder {path}; choose a folder "
                "outside it"
            )
        if resolved == target or target in resolved.parents:
            raise InputFileError(
                f"output folder {target} holds the input {path}; choose another folder"
            )
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise InputFileError(f"output path {target} exists and is not a folder")
    cwd = Path.cwd().resolve()
    if cwd == target or target in cwd.parents:
        raise InputFileError(
            f"output folder {target} holds the working directory; choose a new folder"
        )
    reason = why_not_ours(target, kind=kind)
    if reason:
        raise InputFileError(
            f"output folder {target} cannot be replaced: {reason}; choose a new or empty "
            "folder, or move those files away first (nothing was changed)"
        )


@contextmanager
def atomic_directory(target: Path, *, kind: str,
                     protect: tuple[Path, ...] = ()) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target``.

    The body fills the folder; its :data:`MANIFEST` is written here afterwards. If the
    body raises (or is interrupted), the temporary folder is removed and ``target`` is
    untouched, so a crash never leaves a half-written output that looks complete. See
    :func:`check_output_folder` for when an existing ``target`` may be replaced. The
    swap itself is not interrupted: Ctrl-C or SIGTERM during it takes effect after.
    """
    target = Path(target).resolve()
    parent = target.parent
    check_output_folder(target, protect, kind=kind)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    except OSError as exc:
        raise InputFileError(f"cannot create a folder in {parent}: {exc.strerror}") from None
    try:
        yield staging
        write_manifest(staging, kind=kind)
        os.chmod(staging, 0o755)
        with deferred():
            _swap(staging, target, kind=kind)
    except BaseException as error:
        fault = None if isinstance(error, KeyboardInterrupt) else _fault(error, staging, target)
        shutil.rmtree(staging, ignore_errors=True)
        if fault is not None:
            raise fault from error
        raise
    logger.info("wrote %s", target)


def _fault(error: BaseException, staging: Path, target: Path) -> FaultError | None:
    """What stopped writing ``target``, when it was the system and not a bug."""
    if isinstance(error, DistrictingError) and not isinstance(error, FaultError):
        return None
    return as_fault(error, path=target, near=[staging])


def _swap(staging: Path, target: Path, *, kind: str) -> None:
    """Move ``staging`` to ``target``; an earlier ``target`` goes aside first and is
    removed only if it is still wholly ours (a file added meanwhile keeps it)."""
    if not target.exists():
        os.replace(staging, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, aside / target.name)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside / target.name, target)
        aside.rmdir()
        raise
    reason = why_not_ours(aside / target.name, kind=kind)
    if reason:
        logger.warning("kept the earlier %s at %s: %s", target.name, aside / target.name,
                       reason)
        return
    shutil.rmtree(aside, ignore_errors=True)
