"""Write plan files so that the same plan always gives the same bytes: GeoPackage, JSON, XLSX."""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from districting.errors import DistrictingError
from districting.layers import LAYER_FIELDS, PlanLayers, has_geometry

if TYPE_CHECKING:
    from _typeshed import SizedBuffer

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The GeoPackage timestamp is fixed so that equal plans are byte-identical files.
FIXED_TIMESTAMP = "2021-06-30T00:00:00.000Z"

#: Workbook timestamps (document properties and zip entries), fixed so that reruns match.
XLSX_TIMESTAMP = datetime.datetime(2000, 1, 1)


@contextmanager
def fixed_gpkg_timestamp() -> Iterator[None]:
    """Make GDAL stamp GeoPackages with :data:`FIXED_TIMESTAMP` instead of the clock."""
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_TIMESTAMP})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


#: Edges drawn and written at a time when the adjacency layer comes without lines.
EDGE_CHUNK = 250_000


def write_geopackage(layers: PlanLayers, path: Path) -> None:
    """Write every layer of the plan to one GeoPackage.

    An adjacency layer without geometry (as the pipeline makes it) gets each edge drawn
    as the segment between its two units' points, a chunk at a time: a national plan has
    about eight million edges, whose lines would take two gigabytes held all at once.
    """
    with fixed_gpkg_timestamp():
        for name, frame in layers.as_dict().items():
            if name == "unit_adjacency" and not has_geometry(frame):
                _write_edge_lines(frame, layers.units, path)
            else:
                pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")


def _write_edge_lines(edges: pd.DataFrame, units: gpd.GeoDataFrame, path: Path) -> None:
    """The ``unit_adjacency`` layer, streamed to the GeoPackage in chunks of
    :data:`EDGE_CHUNK` edges, each line drawn from ``u``'s point to ``v``'s."""
    index = pd.Index(units["unit_id"])
    ends = np.stack([index.get_indexer(edges["u"]), index.get_indexer(edges["v"])], axis=1)
    if (ends < 0).any():
        unknown = edges["u"].where(ends[:, 0] < 0, edges["v"]).to_numpy()[
            np.flatnonzero((ends < 0).any(axis=1))[0]]
        raise DistrictingError(f"an adjacency edge names unit '{unknown}', "
                               "which is not in the units layer")
    xy = shapely.get_coordinates(units.geometry.to_numpy())
    fields = LAYER_FIELDS["unit_adjacency"]
    schema = pa.schema([("u", pa.string()), ("v", pa.string()), ("length_m", pa.float64()),
                        ("kind", pa.string()), ("geometry", pa.binary())])

    stopped: list[BaseException] = []

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for start in range(0, len(edges), EDGE_CHUNK):
                part = edges.iloc[start:start + EDGE_CHUNK]
                lines = shapely.linestrings(xy[ends[start:start + EDGE_CHUNK]])
                columns = [pa.array(part[name].to_numpy(), type=schema.field(name).type)
                           for name in fields]
                yield pa.RecordBatch.from_arrays([*columns, pa.array(shapely.to_wkb(lines))],
                                                 schema=schema)
        except BaseException as error:  # Arrow hands it on as a RuntimeError
            if not isinstance(error, GeneratorExit):
                stopped.append(error)
            raise

    try:
        pyogrio.write_arrow(pa.RecordBatchReader.from_batches(schema, batches()), path,
                            layer="unit_adjacency", driver="GPKG", geometry_name="geometry",
                            geometry_type="LineString", crs=units.crs.to_wkt())
    except Exception:
        if stopped:  # what stopped the batches (Ctrl-C included), not Arrow's wrapping
            raise stopped[0] from None
        raise


def save_workbook(workbook: Workbook, path: Path) -> None:
    """Save an openpyxl workbook so that the same content always gives the same bytes.

    openpyxl stamps the document's "created" and "modified" properties and every zip
    entry with the current time; here all of them are :data:`XLSX_TIMESTAMP`. The
    entries are stamped as they are written (see :class:`_StampedZip`), so nothing is
    compressed twice. Embedded images are stored as given, so they must be
    deterministic themselves.
    """
    workbook.properties.created = XLSX_TIMESTAMP
    workbook.properties.modified = XLSX_TIMESTAMP
    buffer = io.BytesIO()
    with _StampedZip(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).write_data()
    Path(path).write_bytes(buffer.getvalue())


class _StampedZip(zipfile.ZipFile):
    """A zip archive whose entries all carry :data:`XLSX_TIMESTAMP`, not the clock or a
    temporary file's time (openpyxl writes each worksheet through one)."""

    _STAMP = XLSX_TIMESTAMP.timetuple()[:6]

    def writestr(self, zinfo_or_arcname: zipfile.ZipInfo | str, data: SizedBuffer | str,
                 compress_type: int | None = None, compresslevel: int | None = None) -> None:
        if isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            info = zinfo_or_arcname
        else:
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=self._STAMP)
            info.compress_type = self.compression
            info.external_attr = 0o600 << 16  # as zipfile gives a named entry
        super().writestr(info, data, compress_type, compresslevel)

    def write(self, filename: str | os.PathLike[str], arcname: str | os.PathLike[str] | None = None,
              compress_type: int | None = None, compresslevel: int | None = None) -> None:
        info = zipfile.ZipInfo.from_file(filename, arcname)
        info.date_time = self._STAMP
        info.compress_type = self.compression
        self.writestr(info, Path(filename).read_bytes(), compress_type, compresslevel)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary file in the same folder, then replace ``path``, so
    a crash never leaves a half-written file. A plain open() (unlike mkstemp) gives the
    file the usual umask permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pick_language(texts: dict[str, T], lang: str, *, what: str) -> T:
    """The ``lang`` entry of a table of texts; an unknown language is a clear error."""
    if lang not in texts:
        raise DistrictingError(
            f"unknown {what} language '{lang}'; choose one of {', '.join(sorted(texts))}"
        )
    return texts[lang]


def write_json(data: object, path: Path) -> None:
    """Write pretty, UTF-8 JSON with a trailing newline."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
