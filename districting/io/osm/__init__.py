"""Turn an OpenStreetMap extract into a Stage-1 register skeleton.

OpenStreetMap has building footprints, addresses, streets, rivers and railways, but
no dwellings or residents: :func:`register_from_osm` reads an extract offline into a
register in the layout of :mod:`districting.synth`, with every count an estimate, and
:func:`write_osm_register` writes it as a GeoPackage that ``districting plan`` accepts.
The rules (input formats, addresses, kinds, functions, estimates, settlement, streets,
barriers and crossings) are in ``docs/input.md``, "Registers from OpenStreetMap".

The modules, by job: :mod:`~districting.io.osm.source` (format, decompression, the XML
scan, features), :mod:`~districting.io.osm.tags` (what the tags mean, the density
norms), :mod:`~districting.io.osm.buildings` (the building rows),
:mod:`~districting.io.osm.streets` (street graph, barriers, crossings) and
:mod:`~districting.io.osm.register` (the register assembled, and written).
"""

from __future__ import annotations

from districting.io.osm.register import (
    DEFAULT_SETTLEMENT_ID,
    OSM_ATTRIBUTION,
    OsmRegister,
    register_from_osm,
    write_osm_register,
)
from districting.io.osm.streets import CROSSING_TOLERANCE_M, MIN_WATER_AREA_M2
from districting.io.osm.tags import DensityNorms

__all__ = [
    "CROSSING_TOLERANCE_M",
    "DEFAULT_SETTLEMENT_ID",
    "MIN_WATER_AREA_M2",
    "OSM_ATTRIBUTION",
    "DensityNorms",
    "OsmRegister",
    "register_from_osm",
    "write_osm_register",
]
