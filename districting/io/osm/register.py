"""Assemble a register skeleton from an OSM extract (:func:`register_from_osm`) and write it."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from districting.errors import ConfigError, InputFileError
from districting.io.osm.buildings import _buildings, _context
from districting.io.osm.source import WGS84, _prepare_xml, _read_features, _scan
from districting.io.osm.streets import _barriers, _crossings, _streets
from districting.io.osm.tags import DensityNorms, _obj, _tag
from districting.io.register import file_sha256
from districting.synth import LAYER_NAMES, write_layers

logger = logging.getLogger(__name__)

#: Settlement code used when none is given (illustrative, not an official KATO code).
DEFAULT_SETTLEMENT_ID = "000000000"
#: Buffer around the convex hull of the buildings that gives the settlement polygon.
SETTLEMENT_MARGIN_M = 100.0
#: Attribution required by the ODbL.
OSM_ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"


@dataclass
class OsmRegister:
    """A Stage-1 register skeleton imported from OSM, with an import report.

    Every layer is in EPSG:4326; ``street_nodes`` is indexed by ``osmid`` and
    ``street_edges`` by ``(u, v, key)``, as in :class:`districting.synth.SyntheticRegister`.

    Attributes
    ----------
    buildings
        One row per building footprint (Polygon or MultiPolygon) with the register
        columns plus ``address_source``, ``estimated``, ``osm_building``,
        ``floors_source`` and ``footprint_m2``.
    settlements
        One polygon: the convex hull of the buildings buffered by 100 m.
    street_nodes
        Street graph nodes.
    street_edges
        Street graph edges, both directions of every way.
    barriers
        Rivers, canals, large water bodies, railways and motorways (LineString).
    crossings
        Level crossings, bridges and tunnels (Point on a barrier line).
    metadata
        Source file, attribution and ``estimated="true"``, ``synthetic="false"``.
    report
        Counts of what was read and how it was used.
    """

    buildings: gpd.GeoDataFrame
    settlements: gpd.GeoDataFrame
    street_nodes: gpd.GeoDataFrame
    street_edges: gpd.GeoDataFrame
    barriers: gpd.GeoDataFrame
    crossings: gpd.GeoDataFrame
    metadata: dict[str, str]
    report: dict[str, int]

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the layers by name, in the order they are written."""
        return {name: getattr(self, name) for name in LAYER_NAMES}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bz2", ".pbf", ".osm", ".xml"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def register_from_osm(
    path: str | Path,
    *,
    settlement_name: str | None = None,
    settlement_id: str | None = None,
    density: DensityNorms | None = None,
) -> OsmRegister:
    """Build a Stage-1 register skeleton from an OpenStreetMap extract.

    The rules (addresses, kinds, functions, estimates, barriers, crossings) are
    described in ``docs/input.md``, "Registers from OpenStreetMap".

    Parameters
    ----------
    path
        An ``.osm``, ``.osm.gz``, ``.osm.bz2`` or ``.osm.pbf`` file (recognised by
        content). ``.osm.pbf`` needs the ``osmium`` package.
    settlement_name
        Name of the one settlement; default: the file name without extensions.
    settlement_id
        Code of the settlement; default :data:`DEFAULT_SETTLEMENT_ID`
        (illustrative).
    density
        Norms for the dwelling and resident estimates; default :class:`DensityNorms`.

    Returns
    -------
    OsmRegister
        The layers in EPSG:4326, the metadata and an import report.

    Raises
    ------
    InputFileError
        If the file is missing, empty, not OSM data or has no building footprints.
    """
    started = time.monotonic()
    source = Path(path)
    norms = density or DensityNorms()
    code = DEFAULT_SETTLEMENT_ID if settlement_id is None else str(settlement_id).strip()
    name = _stem(source) if settlement_name is None else str(settlement_name).strip()
    if not code:
        raise ConfigError("settlement_id must not be empty")
    if not name:
        raise ConfigError("settlement_name must not be empty")
    report: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="districting-osm-") as tmp:
        workdir = Path(tmp)
        xml_path = _prepare_xml(source, workdir)
        scan = _scan(xml_path, source)
        report.update(osm_nodes=scan.n_nodes, osm_ways=scan.n_ways,
                      osm_relations=scan.n_relations)
        features = _read_features(xml_path, source)
        building_tag = _tag(features, "building")
        elements = np.asarray(features.index.get_level_values(0), dtype=object)
        if not ((building_tag != "") & (building_tag != "no") & (elements != "node")).any():
            raise InputFileError(f"{source}: the OSM file has no buildings")
        street_nodes, street_edges = _streets(scan, workdir, code)
    buildings_area = features[(building_tag != "") & (building_tag != "no")]
    metric = CRS(buildings_area.estimate_utm_crs())
    context = _context(features, metric, street_edges, report)
    buildings = _buildings(
        features, metric, context, settlement_id=code, settlement_name=name, norms=norms,
        source=source, report=report,
    )
    projected = buildings.geometry.to_crs(metric).to_numpy()
    hull = shapely.multipoints(shapely.get_coordinates(projected)).convex_hull
    polygon = gpd.GeoSeries([hull.buffer(SETTLEMENT_MARGIN_M)], crs=metric).to_crs(WGS84)
    settlements = gpd.GeoDataFrame(
        {"settlement_id": _obj([code]), "settlement_name": _obj([name]),
         "kind": _obj(["settlement"])},
        geometry=polygon.values, crs=WGS84,
    )
    barriers, lines = _barriers(features, metric)
    crossings = _crossings(features, barriers, lines, metric)
    report["street_nodes"] = len(street_nodes)
    report["street_edges"] = len(street_edges)
    report["barriers"] = len(barriers)
    report["crossings"] = len(crossings)
    for kind in ("level_crossing", "pedestrian_crossing", "bridge", "tunnel"):
        report[f"crossings_{kind}"] = int((crossings["kind"] == kind).sum())
    report["buildings"] = len(buildings)
    metadata = {
        "synthetic": "false",
        "estimated": "true",
        "generator": "districting.osm",  # the name registers have always carried; unchanged
        "generator_version": "1",
        "source": source.name,
        "source_sha256": file_sha256(source),
        "osm": OSM_ATTRIBUTION,
        "crs": WGS84,
        "metric_crs": metric.to_string(),
        "settlement_id": code,
        "settlement_name": name,
        "total_residents": str(report["estimated_residents"]),
        "density_norms": json.dumps(asdict(norms), sort_keys=True, ensure_ascii=False),
        "description": (
            f"Stage-1 register SKELETON imported from OpenStreetMap ({source.name}; "
            f"{OSM_ATTRIBUTION}). Buildings, addresses, streets and barriers come from OSM; "
            "dwellings, residents and households are ESTIMATES from footprint area and "
            "levels, to be replaced by the Stage-1 address listing. The settlement code "
            "is illustrative unless one was given."
        ),
    }
    logger.info(
        "imported %s: %d buildings (%d tag, %d node, %d derived addresses), %d residential "
        "or mixed, %d estimated residents, %d barriers, %d crossings in %.1f s",
        source.name, report["buildings"], report["address_tag"], report["address_node"],
        report["address_derived"], report["residential"] + report["mixed"],
        report["estimated_residents"], report["barriers"], report["crossings"],
        time.monotonic() - started,
    )
    return OsmRegister(
        buildings=buildings, settlements=settlements, street_nodes=street_nodes,
        street_edges=street_edges, barriers=barriers, crossings=crossings,
        metadata=metadata, report=report,
    )


def write_osm_register(register: OsmRegister, path: str | Path) -> Path:
    """Write an imported register as a GeoPackage in the layout of ``districting.synth``.

    The write is atomic and byte-reproducible (see :func:`districting.synth.write_layers`).

    Parameters
    ----------
    register
        The register from :func:`register_from_osm`.
    path
        Destination ``.gpkg`` file; replaced if it exists.

    Returns
    -------
    Path
        The path written.
    """
    written = write_layers(register.layers(), register.metadata, path)
    logger.debug("wrote OSM register to %s", written)
    return written
