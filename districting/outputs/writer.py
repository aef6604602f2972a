"""Write a finished plan to its output folder, atomically: all files or none."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyogrio

from districting.errors import InputFileError
from districting.layers import PlanLayers

logger = logging.getLogger(__name__)

#: The GeoPackage timestamp is fixed so that equal plans are byte-identical files.
FIXED_TIMESTAMP = "2021-06-30T00:00:00.000Z"


@contextmanager
def fixed_gpkg_timestamp() -> Iterator[None]:
    """Make GDAL stamp GeoPackages with :data:`FIXED_TIMESTAMP` instead of the clock."""
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def write_geopackage(layers: PlanLayers, path: Path) -> None:
    """Write every layer of the plan to one GeoPackage."""
    with fixed_gpkg_timestamp():
        for name, frame in layers.as_dict().items():
            pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")


def write_json(data: object, path: Path) -> None:
    """Write pretty, UTF-8 JSON with a trailing newline."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target``.

    If the body raises, the temporary folder is removed and ``target`` is untouched,
    so a crash never leaves a half-written plan that looks complete.
    """
    target = Path(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"cannot create output folder {parent}: {exc.strerror}") from None
    if target.exists() and not target.is_dir():
        raise InputFileError(f"output path {target} exists and is not a folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    os.chmod(target, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("wrote %s", target)
