"""Read an OSM extract: recognise its format, decompress it, scan its XML, read its features.

The format is recognised from the file's first bytes, not its name: ``.osm`` (XML),
``.osm.gz``, ``.osm.bz2`` and ``.osm.pbf``. Compressed files are decompressed, and PBF
files converted to XML with ``osmium``, into a temporary folder; osmnx then reads the
XML. Nothing is downloaded.
"""

from __future__ import annotations

import bz2
import gzip
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from districting.errors import InputFileError
from districting.io.osm.tags import _walkable

#: CRS of the OSM data and of every layer of the imported register.
WGS84 = "EPSG:4326"
# the tags whose features osmnx reads
_FEATURE_TAGS: dict[str, bool | str | list[str]] = {
    "building": True, "building:part": True, "addr:housenumber": True, "entrance": True,
    "shop": True, "amenity": True, "office": True, "craft": True, "landuse": True,
    "waterway": True, "natural": "water", "railway": True, "highway": True,
}


@dataclass
class _Scan:
    """What one pass over the XML found: node coordinates and walkable highway ways."""

    nodes: dict[int, tuple[str, str]] = field(default_factory=dict)
    ways: list[tuple[int, list[int], dict[str, str]]] = field(default_factory=list)
    n_nodes: int = 0
    n_ways: int = 0
    n_relations: int = 0


def _prepare_xml(path: Path, workdir: Path) -> Path:
    """An uncompressed OSM XML file with the data of ``path``, decompressing if needed."""
    if not path.exists():
        raise InputFileError(f"OSM file not found: {path}")
    if path.is_dir():
        raise InputFileError(f"OSM path is a folder, not a file: {path}")
    if path.stat().st_size == 0:
        raise InputFileError(f"OSM file is empty: {path}")
    with path.open("rb") as handle:
        head = handle.read(64)
    target = workdir / "extract.osm"
    if head.startswith(b"\x1f\x8b"):
        _decompress(gzip.open, path, target, "gzip")
    elif head.startswith(b"BZh"):
        _decompress(bz2.open, path, target, "bzip2")
    elif b"OSMHeader" in head:
        _pbf_to_xml(path, target)
    elif path.suffix.lower() in (".gz", ".bz2", ".pbf"):
        raise InputFileError(f"{path}: the file is not {path.suffix.lower()[1:]}-compressed "
                             "OSM data")
    else:
        return path
    if target.stat().st_size == 0:
        raise InputFileError(f"OSM file is empty once decompressed: {path}")
    return target


def _decompress(opener: Any, path: Path, target: Path, name: str) -> None:
    try:
        with opener(path, "rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    except (OSError, EOFError) as exc:
        raise InputFileError(f"{path}: cannot decompress the {name} file ({exc})") from None


def _pbf_to_xml(path: Path, target: Path) -> None:
    try:
        import osmium
    except ImportError:
        raise InputFileError(
            f"{path}: reading .osm.pbf needs the 'osmium' package (pip install osmium)"
        ) from None
    try:
        with osmium.SimpleWriter(str(target), overwrite=True) as writer:
            for obj in osmium.FileProcessor(str(path)):
                writer.add(obj)
    except RuntimeError as exc:
        raise InputFileError(f"{path}: cannot read the PBF file ({exc})") from None


def _scan(xml_path: Path, source: Path) -> _Scan:
    """Check that the file is OSM XML; collect node coordinates and walkable ways."""
    scan = _Scan()
    try:
        context = ET.iterparse(xml_path, events=("start", "end"))
        _, root = next(context)
        if root.tag != "osm":
            raise InputFileError(
                f"{source}: not OSM XML (the root element is <{root.tag}>, not <osm>)"
            )
        for event, elem in context:
            if event != "end":
                continue
            if elem.tag == "node":
                scan.n_nodes += 1
                lat, lon = elem.get("lat"), elem.get("lon")
                if lat is not None and lon is not None:
                    scan.nodes[int(elem.get("id", "0"))] = (lat, lon)
                root.clear()
            elif elem.tag == "way":
                scan.n_ways += 1
                tags = {t.get("k", ""): t.get("v", "") for t in elem.iter("tag")}
                if _walkable(tags):
                    refs = [int(nd.get("ref", "0")) for nd in elem.iter("nd")]
                    scan.ways.append((int(elem.get("id", "0")), refs, tags))
                root.clear()
            elif elem.tag == "relation":
                scan.n_relations += 1
                root.clear()
    except ET.ParseError as exc:
        raise InputFileError(f"{source}: not valid OSM XML ({exc})") from None
    except StopIteration:
        raise InputFileError(f"{source}: not OSM XML (no root element)") from None
    except ValueError as exc:
        raise InputFileError(f"{source}: malformed OSM XML ({exc})") from None
    if scan.n_nodes == 0 and scan.n_ways == 0:
        raise InputFileError(f"{source}: the OSM file contains no nodes or ways")
    return scan


def _read_features(xml_path: Path, source: Path) -> gpd.GeoDataFrame:
    import osmnx

    try:
        frame = osmnx.features_from_xml(xml_path, tags=_FEATURE_TAGS)
    except Exception as exc:  # osmnx raises InsufficientResponseError, ValueError, ...
        raise InputFileError(f"{source}: no usable OSM features ({exc})") from None
    if len(frame) == 0:
        raise InputFileError(f"{source}: no usable OSM features")
    if frame.crs is None:
        frame = frame.set_crs(WGS84)
    elements = np.asarray(frame.index.get_level_values(0), dtype=object)
    ids = np.asarray(frame.index.get_level_values(1), dtype=np.int64)
    rank = np.select([elements == "node", elements == "relation"], [0, 1], 2)
    order = np.lexsort((ids, rank))
    return frame.iloc[order]


def _osm_ids(frame: pd.DataFrame) -> list[str]:
    letters = {"node": "n", "way": "w", "relation": "r"}
    return [f"osm-{letters.get(str(e), str(e)[:1])}{int(i)}" for e, i in frame.index]
