"""A deterministic generator of a plausible SYNTHETIC Stage-1 address register.

The register is shaped like the city of Baikonur (Kazakhstan) and the two villages
its administration covers, Toretam and Akay (see ``MISSION.md``, "Facts for the
embedded demo"). It is **not** real census data: every building, address, count
and street comes from ``numpy.random.default_rng(seed)``, and the KATO-style
settlement codes are illustrative.

Geometry is built in UTM zone 41N (EPSG:32641) metres and reprojected to
longitude/latitude (EPSG:4326) at the end. The same seed and scale give identical
GeoDataFrames, and :func:`write_register` turns them into a byte-identical
GeoPackage.

Layout of the city (local metres, x to the east, y to the north):

- a grid of microdistricts (superblocks of 450 m) with 5- and 9-storey panel
  blocks, schools, post offices, public-service centres (ЦОН), the akimat,
  shops, clinics, kindergartens and a few dormitories;
- a private-house sector west of the microdistricts, and another one east of a
  railway that runs north-south through the eastern part of the city and is
  crossed by two or three level crossings;
- the Syr Darya along the southern edge, crossed by one road bridge;
- roads to Toretam (about 7 km north, west of the railway) and Akay (about
  20 km west-north-west).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point

from districting.errors import ConfigError, InputFileError

logger = logging.getLogger(__name__)

__all__ = [
    "BUILDING_KINDS",
    "CANDIDATE_FUNCTIONS",
    "LAYER_NAMES",
    "SyntheticRegister",
    "read_register",
    "read_register_metadata",
    "synthesize_baikonur",
    "write_layers",
    "write_register",
]

#: Geographic CRS of every layer of the register.
WGS84 = "EPSG:4326"
#: Metric CRS the geometry is built in (UTM zone 41N).
BUILD_CRS = "EPSG:32641"
#: Approximate centre of Baikonur (longitude, latitude).
CITY_CENTRE_LONLAT = (63.31, 45.62)

#: Allowed values of ``buildings.kind``.
BUILDING_KINDS = ("residential", "non_residential", "mixed", "collective")
#: ``buildings.function`` values of candidate registration-point buildings.
CANDIDATE_FUNCTIONS = ("school", "post_office", "public_service_centre", "akimat")
#: Layer names of a register GeoPackage, in the order they are written.
LAYER_NAMES = ("buildings", "settlements", "street_nodes", "street_edges", "barriers", "crossings")

#: Timestamp written into ``gpkg_contents.last_change`` (start of Stage 1).
_FIXED_GPKG_DATE = "2021-06-01T00:00:00.000Z"

_BUILDING_COLUMNS = [
    "building_id", "settlement_id", "settlement_name", "address", "kind", "dwellings",
    "residents", "households", "floors", "entrances", "function",
]
_INT_COLUMNS = ("dwellings", "residents", "households", "floors", "entrances")


@dataclass(frozen=True)
class _Settlement:
    settlement_id: str
    name: str
    kind: str
    residents: int  # at scale 1


_CITY = _Settlement("431010000", "Байконур", "city", 69_019)
_TORETAM = _Settlement("431030100", "Торетам", "village", 4_500)
_AKAY = _Settlement("431030200", "Акай", "village", 2_500)
_SETTLEMENTS = (_CITY, _TORETAM, _AKAY)

# --- layout constants (metres) ---------------------------------------------------------
_SUPERBLOCK = 450.0  # microdistrict grid step
_MD_MARGIN = 35.0  # buildings keep this far from the microdistrict's streets
_MD_COLS, _MD_ROWS = 4, 6  # building slots per microdistrict
_SLOT_JITTER = 6.0
_LANES_PER_CITY_BAND = 5  # private lanes between two microdistrict streets
_SEGMENT = 300.0  # private-sector block length between two cross streets
_HOUSE_SETBACK = 15.0  # house from the lane's centre line
_HOUSE_END_GAP = 20.0  # first/last house from a cross street
_HOUSE_SPACING = (25.0, 35.0)
_VILLAGE_BAND = 360.0
_VILLAGE_LANES = 4
_RAIL_GAP = 150.0  # from the microdistricts' eastern street to the railway
_RAIL_TO_EAST_STREET = 50.0  # railway to the first street of the eastern sector
_POLYGON_MARGIN = 150.0
_TORETAM_DISTANCE = 7_000.0
_AKAY_OFFSET = (-19_500.0, 3_500.0)

# --- building mix -----------------------------------------------------------------------
_P_NINE_STOREY = 0.4
_P_MIXED = 0.08
_OCCUPANCY = (0.90, 0.97)
_PERSONS_PER_HOUSEHOLD = (2.25, 3.2)
_HOUSE_SIZE_P = np.array([0.12, 0.20, 0.20, 0.20, 0.14, 0.09, 0.05])  # 1..7 residents
_CITY_PRIVATE_SHARE = 0.07
_CITY_PRIVATE_WEST_SHARE = 0.6
_EXPECTED_BLOCK_RESIDENTS = 211.0
_EXPECTED_HOUSE_RESIDENTS = float(np.dot(np.arange(1, 8), _HOUSE_SIZE_P))

_CITY_GRID_STREETS = (
    "ул. Набережная", "ул. Ленина", "ул. Гагарина", "ул. Неделина", "ул. Титова", "ул. Янгеля",
    "ул. Комарова", "ул. Шубникова", "ул. Горького", "ул. Носова", "ул. Максимова",
    "ул. Мира", "ул. Циолковского", "ул. Глушко", "ул. Бармина", "ул. Челомея",
)
_CITY_AVENUE = "пр. Королёва"
_CITY_PRIVATE_STREETS = (
    "ул. Абая", "ул. Байтурсынова", "ул. Жамбыла", "ул. Сейфуллина", "ул. Ауэзова",
    "ул. Валиханова", "ул. Абылай хана", "ул. Кенесары", "ул. Айтеке би", "ул. Толе би",
    "ул. Казыбек би", "ул. Сатпаева", "ул. Пушкина", "ул. Чехова", "ул. Толстого",
    "ул. Гоголя", "ул. Лермонтова", "ул. Островского", "ул. Фурманова", "ул. Терешковой",
    "ул. Леонова", "ул. Поповича", "ул. Кибальчича", "ул. Садовая", "ул. Степная",
    "ул. Школьная", "ул. Молодёжная", "ул. Строителей", "ул. Железнодорожная",
    "ул. Юбилейная", "ул. Победы", "ул. Космонавтов", "ул. Авиаторов", "ул. Вокзальная",
)
_VILLAGE_STREETS = (
    "ул. Абая", "ул. Жамбыла", "ул. Ауэзова", "ул. Байтурсынова", "ул. Кунаева",
    "ул. Момышулы", "ул. Тауелсиздик", "ул. Достык", "ул. Бейбитшилик", "ул. Желтоксан",
    "ул. Наурыз", "ул. Жастар", "ул. Мектеп", "ул. Сырдария", "ул. Коркыт ата",
    "ул. Толе би", "ул. Казыбек би", "ул. Айтеке би", "ул. Абылай хана", "ул. Кенесары",
    "ул. Сейфуллина", "ул. Майлина", "ул. Жансугурова", "ул. Дулатова", "ул. Бокейханова",
    "ул. Есенова", "ул. Сатпаева", "ул. Валиханова", "ул. Макатаева", "ул. Шокая",
    "ул. Гагарина", "ул. Королёва",
)

# function -> (floors range, entrances range), for non-residential buildings
_NON_RESIDENTIAL: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "school": ((3, 3), (2, 3)),
    "post_office": ((1, 2), (1, 1)),
    "public_service_centre": ((2, 2), (1, 2)),
    "akimat": ((3, 4), (1, 2)),
    "clinic": ((2, 3), (1, 2)),
    "kindergarten": ((2, 2), (1, 2)),
    "shop": ((1, 1), (1, 1)),
}


@dataclass
class SyntheticRegister:
    """A synthetic Stage-1 address register and its context layers.

    Every layer is in EPSG:4326. ``street_nodes`` is indexed by ``osmid`` and
    ``street_edges`` by ``(u, v, key)``, as :func:`osmnx.graph_to_gdfs` returns them,
    so ``osmnx.graph_from_gdfs(street_nodes, street_edges)`` rebuilds the street graph.

    Attributes
    ----------
    buildings
        One row per building (Point), with address, kind and counts.
    settlements
        One convex Polygon per settlement.
    street_nodes
        Street intersections and dead ends.
    street_edges
        Street segments, both directions of every two-way street.
    barriers
        The river and the railway (LineString).
    crossings
        Level crossings and the bridge (Point on a barrier line).
    metadata
        Dataset metadata; ``metadata["synthetic"] == "true"``.
    """

    buildings: gpd.GeoDataFrame
    settlements: gpd.GeoDataFrame
    street_nodes: gpd.GeoDataFrame
    street_edges: gpd.GeoDataFrame
    barriers: gpd.GeoDataFrame
    crossings: gpd.GeoDataFrame
    metadata: dict[str, str]

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Return the layers by name, in the order they are written."""
        return {name: getattr(self, name) for name in LAYER_NAMES}


# ---------------------------------------------------------------------------------------
# Accumulators
# ---------------------------------------------------------------------------------------


@dataclass
class _Buildings:
    """Column lists of buildings, in local metres."""

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    settlement: list[_Settlement] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    dwellings: list[int] = field(default_factory=list)
    residents: list[int] = field(default_factory=list)
    households: list[int] = field(default_factory=list)
    floors: list[int] = field(default_factory=list)
    entrances: list[int] = field(default_factory=list)
    function: list[str] = field(default_factory=list)

    def add(
        self,
        *,
        x: float,
        y: float,
        settlement: _Settlement,
        address: str,
        kind: str,
        dwellings: int = 0,
        residents: int = 0,
        households: int = 0,
        floors: int = 1,
        entrances: int = 1,
        function: str = "",
    ) -> None:
        self.x.append(float(x))
        self.y.append(float(y))
        self.settlement.append(settlement)
        self.address.append(address)
        self.kind.append(kind)
        self.dwellings.append(int(dwellings))
        self.residents.append(int(residents))
        self.households.append(int(households))
        self.floors.append(int(floors))
        self.entrances.append(int(entrances))
        self.function.append(function)

    def __len__(self) -> int:
        return len(self.x)

    def extend(self, other: _Buildings, *, dx: float = 0.0, dy: float = 0.0) -> None:
        """Append ``other``'s buildings shifted by ``(dx, dy)``."""
        self.x.extend(v + dx for v in other.x)
        self.y.extend(v + dy for v in other.y)
        for name in (
            "settlement", "address", "kind", "dwellings", "residents", "households",
            "floors", "entrances", "function",
        ):
            getattr(self, name).extend(getattr(other, name))


class _AxisStreet(NamedTuple):
    """A straight street along the x axis (``horizontal``) or the y axis."""

    horizontal: bool
    const: float  # y of a horizontal street, x of a vertical one
    lo: float
    hi: float
    name: str
    highway: str

    def shifted(self, dx: float, dy: float) -> _AxisStreet:
        if self.horizontal:
            return self._replace(const=self.const + dy, lo=self.lo + dx, hi=self.hi + dx)
        return self._replace(const=self.const + dx, lo=self.lo + dy, hi=self.hi + dy)


class _Names:
    """Street names from a list, then numbered fallbacks."""

    def __init__(self, names: Sequence[str], fallback: str) -> None:
        self._names = list(names)
        self._fallback = fallback
        self._i = 0

    def next(self) -> str:
        i = self._i
        self._i += 1
        if i < len(self._names):
            return self._names[i]
        return self._fallback.format(i - len(self._names) + 1)


@dataclass
class _StreetNet:
    """Street nodes and undirected street segments in local metres."""

    node_ids: dict[tuple[float, float], int] = field(default_factory=dict)
    node_settlement: list[str] = field(default_factory=list)
    edges: list[tuple[int, int, int, str, str, str, list[tuple[float, float]]]] = field(
        default_factory=list
    )
    n_ways: int = 0

    def node(self, xy: tuple[float, float], settlement_id: str) -> int:
        key = (round(xy[0], 3), round(xy[1], 3))
        if key not in self.node_ids:
            self.node_ids[key] = len(self.node_ids) + 1
            self.node_settlement.append(settlement_id)
        return self.node_ids[key]

    def add_grid(self, streets: Sequence[_AxisStreet], settlement_id: str) -> None:
        """Add axis-parallel streets, with a node wherever two of them meet."""
        eps = 1e-6
        for street in streets:
            cuts = {street.lo, street.hi}
            for other in streets:
                if other.horizontal == street.horizontal:
                    continue
                if (street.lo - eps <= other.const <= street.hi + eps
                        and other.lo - eps <= street.const <= other.hi + eps):
                    cuts.add(other.const)
            stops = sorted(cuts)
            self.n_ways += 1
            for a, b in itertools.pairwise(stops):
                if b - a < 1.0:
                    continue
                if street.horizontal:
                    coords = [(a, street.const), (b, street.const)]
                else:
                    coords = [(street.const, a), (street.const, b)]
                u = self.node(coords[0], settlement_id)
                v = self.node(coords[-1], settlement_id)
                self.edges.append(
                    (u, v, self.n_ways, street.name, street.highway, settlement_id, coords)
                )

    def add_road(
        self, coords: list[tuple[float, float]], name: str, highway: str, settlement_id: str
    ) -> None:
        """Add one polyline road between two (usually existing) nodes."""
        self.n_ways += 1
        u = self.node(coords[0], settlement_id)
        v = self.node(coords[-1], settlement_id)
        self.edges.append((u, v, self.n_ways, name, highway, settlement_id, coords))


# ---------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------


def _non_residential(
    rng: np.random.Generator, function: str
) -> dict[str, Any]:
    (f_lo, f_hi), (e_lo, e_hi) = _NON_RESIDENTIAL[function]
    return {
        "kind": "non_residential",
        "function": function,
        "floors": int(rng.integers(f_lo, f_hi + 1)),
        "entrances": int(rng.integers(e_lo, e_hi + 1)),
    }


def _apartment_block(rng: np.random.Generator) -> dict[str, Any]:
    """One 5- or 9-storey panel block with occupancy and residents."""
    if rng.random() < _P_NINE_STOREY:
        floors, entrances, per_floor = 9, int(rng.integers(2, 5)), 4
    else:
        floors, entrances, per_floor = 5, int(rng.integers(3, 7)), 3
    dwellings = entrances * floors * per_floor
    kind = "residential"
    if rng.random() < _P_MIXED:
        kind = "mixed"  # ground-floor shop in one entrance
        dwellings -= per_floor
    occupied = int(rng.binomial(dwellings, rng.uniform(*_OCCUPANCY)))
    residents = round(rng.uniform(*_PERSONS_PER_HOUSEHOLD) * occupied)
    return {
        "kind": kind, "function": "", "floors": floors, "entrances": entrances,
        "dwellings": dwellings, "households": occupied, "residents": residents,
    }


def _collective(rng: np.random.Generator, function: str) -> dict[str, Any]:
    """A dormitory or hostel: dwellings are rooms, every resident a household."""
    residents = int(rng.integers(120, 321))
    rooms = math.ceil(residents / rng.uniform(2.0, 3.0))
    return {
        "kind": "collective", "function": function, "floors": int(rng.integers(4, 6)),
        "entrances": int(rng.integers(1, 3)), "dwellings": rooms, "households": residents,
        "residents": residents,
    }


def _spread(count: int, n: int, offset: float = 0.0) -> list[int]:
    """``count`` indices spread evenly over ``range(n)``."""
    return [min(n - 1, int((i + offset) * n / count)) for i in range(count)]


def _microdistricts(
    rng: np.random.Generator, *, apartment_target: int, scale: float
) -> list[list[tuple[int, dict[str, Any]]]]:
    """Contents of each microdistrict: ``(slot, building attributes)`` in slot order."""
    per_md = (_MD_COLS * _MD_ROWS - 2) * _EXPECTED_BLOCK_RESIDENTS
    n_est = max(1, int(apartment_target // per_md))
    specials: list[list[dict[str, Any]]] = [[] for _ in range(n_est)]
    specials[0].append(_non_residential(rng, "akimat"))
    for i in _spread(1 if n_est < 4 else 2, n_est):
        specials[i].append(_non_residential(rng, "public_service_centre"))
    for i in _spread(max(1, round(n_est / 4)), n_est, 0.5):
        specials[i].append(_non_residential(rng, "post_office"))
    for i in _spread(max(1, round(n_est / 6)), n_est, 0.3):
        specials[i].append(_non_residential(rng, "clinic"))
    n_collective = max(1, round(int(rng.integers(3, 5)) * scale))
    for j, i in enumerate(_spread(n_collective, n_est, 0.7)):
        specials[i].append(_collective(rng, "hostel" if j == 0 else "dormitory"))

    n_slots = _MD_COLS * _MD_ROWS
    contents: list[list[tuple[int, dict[str, Any]]]] = []
    total = sum(a["residents"] for md in specials for a in md if a["kind"] == "collective")
    i = 0
    while i < n_est or total < apartment_target:
        md = [_non_residential(rng, "school")]
        md += specials[i] if i < n_est else []
        if rng.random() < 0.6:
            md.append(_non_residential(rng, "shop"))
        if rng.random() < 0.5:
            md.append(_non_residential(rng, "kindergarten"))
        order = rng.permutation(n_slots)
        special_slots = sorted(int(s) for s in order[: len(md)])
        placed = dict(zip(special_slots, md, strict=True))
        for slot in range(n_slots):
            if slot in placed:
                continue
            if total >= apartment_target:
                break
            block = _apartment_block(rng)
            total += block["residents"]
            placed[slot] = block
        contents.append(sorted(placed.items()))
        i += 1
    return contents


def _grid_shape(n_md: int) -> tuple[int, int]:
    """Columns and rows of the microdistrict grid (wider than tall, along the river)."""
    rows = max(1, round(math.sqrt(n_md / 1.7)))
    return math.ceil(n_md / rows), rows


@dataclass
class _Sector:
    """A private-house sector: lanes along x between cross streets every ``_SEGMENT``."""

    x0: float
    directions: tuple[int, ...]
    bands: list[tuple[float, float]]
    lanes_per_band: int
    used: dict[int, int] = field(default_factory=dict)  # direction -> segments used
    lane_names: dict[tuple[int, int], str] = field(default_factory=dict)

    def lane_ys(self) -> list[tuple[int, float]]:
        """``(lane key, y)`` of every lane, band by band from the south."""
        out = []
        for b, (lo, hi) in enumerate(self.bands):
            step = (hi - lo) / (self.lanes_per_band + 1)
            out += [(b * 100 + k, lo + (k + 1) * step) for k in range(self.lanes_per_band)]
        return out

    def extent(self, direction: int) -> float:
        """x of the last cross street used in ``direction``."""
        return self.x0 + direction * self.used.get(direction, 0) * _SEGMENT


def _fill_sector(
    rng: np.random.Generator,
    out: _Buildings,
    sector: _Sector,
    *,
    settlement: _Settlement,
    target: int,
    names: _Names,
) -> int:
    """Add private houses segment by segment until ``target`` residents; return residents."""
    total = 0
    counters: dict[str, list[int]] = {}
    lanes = sector.lane_ys()
    for direction in sector.directions:
        sector.used[direction] = 0
    segment = 0
    while total < target:
        direction = sector.directions[segment % len(sector.directions)]
        k = segment // len(sector.directions)
        sector.used[direction] = k + 1
        near = sector.x0 + direction * k * _SEGMENT
        length = _SEGMENT - 2 * _HOUSE_END_GAP
        for lane_key, lane_y in lanes:
            if total >= target:
                break
            key = (direction, lane_key)
            if key not in sector.lane_names:
                sector.lane_names[key] = names.next()
            street = sector.lane_names[key]
            counter = counters.setdefault(street, [1, 2])
            for side, parity in ((1, 0), (-1, 1)):
                if total >= target:
                    break
                steps = rng.uniform(*_HOUSE_SPACING, size=int(length // _HOUSE_SPACING[0]) + 1)
                along = np.concatenate([[0.0], np.cumsum(steps)])
                along = along[along <= length]
                sizes = rng.choice(7, size=along.size, p=_HOUSE_SIZE_P) + 1
                floors = np.where(rng.random(along.size) < 0.1, 2, 1)
                lateral = rng.uniform(-2.0, 2.0, size=along.size)
                for a, size, fl, lat in zip(along, sizes, floors, lateral, strict=True):
                    if total >= target:
                        break
                    x = near + direction * (_HOUSE_END_GAP + a)
                    y = lane_y + side * _HOUSE_SETBACK + lat
                    number = counter[parity]
                    counter[parity] += 2
                    out.add(
                        x=x, y=y, settlement=settlement, address=f"{street}, {number}",
                        kind="residential", dwellings=1, residents=int(size), households=1,
                        floors=int(fl), entrances=1,
                    )
                    total += int(size)
        segment += 1
    return total


def _sector_streets(sector: _Sector, *, first_cross: int, lane_highway: str) -> list[_AxisStreet]:
    """Lanes and cross streets of a filled sector (band streets are left to the caller)."""
    y_lo, y_hi = sector.bands[0][0], sector.bands[-1][1]
    streets: list[_AxisStreet] = []
    lane_y_by_key = dict(sector.lane_ys())
    for (direction, lane_key), name in sector.lane_names.items():
        lane_y = lane_y_by_key[lane_key]
        end = sector.extent(direction)
        streets.append(
            _AxisStreet(True, lane_y, min(sector.x0, end), max(sector.x0, end), name, lane_highway)
        )
    number = first_cross
    for direction in sector.directions:
        for k in range(1, sector.used.get(direction, 0) + 1):
            x = sector.x0 + direction * k * _SEGMENT
            streets.append(_AxisStreet(False, x, y_lo, y_hi, f"{number}-й проезд", "residential"))
            number += 1
    return streets


def _trim(
    rng: np.random.Generator,
    b: _Buildings,
    indices: list[int],
    slack_floor: np.ndarray,
    target: int,
) -> None:
    """Remove residents from ``indices`` so that their settlement totals ``target``."""
    residents = np.array([b.residents[i] for i in indices], dtype=np.int64)
    excess = int(residents.sum()) - target
    if excess <= 0:
        return
    slack = np.maximum(residents - slack_floor, 0).astype(np.int64)
    take = min(excess, int(slack.sum()))
    if take < excess:
        logger.warning("cannot trim %d surplus residents (only %d removable)", excess, take)
    if take <= 0:
        return
    removed = rng.multivariate_hypergeometric(slack, take)
    for j, i in enumerate(indices):
        b.residents[i] -= int(removed[j])


def _trim_settlement(rng: np.random.Generator, b: _Buildings, settlement: _Settlement,
                     target: int) -> None:
    idx = [i for i, s in enumerate(b.settlement) if s is settlement]
    floor = np.array(
        [
            b.households[i] if b.kind[i] in ("residential", "mixed") else b.residents[i]
            for i in idx
        ],
        dtype=np.int64,
    )
    # a private house (one dwelling) keeps at least one resident: households == 1 already
    _trim(rng, b, idx, floor, target)


@dataclass(frozen=True)
class _CityFrame:
    """Where the city's streets and barriers are, in local metres."""

    x_rail: float
    x_west: float
    x_avenue: float
    y_top: float
    y_mid: float
    crossing_ys: list[float]


def _city(
    rng: np.random.Generator, target: int, scale: float
) -> tuple[_Buildings, list[_AxisStreet], _CityFrame]:
    """The city: microdistricts and the two private sectors, in local metres."""
    out = _Buildings()
    private = round(target * _CITY_PRIVATE_SHARE)
    private_west = round(private * _CITY_PRIVATE_WEST_SHARE)
    private_east = private - private_west
    # collectives and apartment blocks share this target (the final trim makes it exact)
    apartment_target = target - private
    contents = _microdistricts(rng, apartment_target=apartment_target, scale=scale)
    n_md = len(contents)
    ncol, nrow = _grid_shape(n_md)
    s = _SUPERBLOCK
    dx_slot = (s - 2 * _MD_MARGIN) / _MD_COLS
    dy_slot = (s - 2 * _MD_MARGIN) / _MD_ROWS
    for i, md in enumerate(contents):
        col, row = i % ncol, i // ncol
        jitter = rng.uniform(-_SLOT_JITTER, _SLOT_JITTER, size=(len(md), 2))
        for number, ((slot, attrs), (jx, jy)) in enumerate(zip(md, jitter, strict=True), 1):
            r, c = divmod(slot, _MD_COLS)
            out.add(
                x=col * s + _MD_MARGIN + (c + 0.5) * dx_slot + jx,
                y=row * s + _MD_MARGIN + (r + 0.5) * dy_slot + jy,
                settlement=_CITY,
                address=f"мкр. {i + 1}, д. {number}",
                **attrs,
            )

    bands = [(j * s, (j + 1) * s) for j in range(nrow)]
    names = _Names(_CITY_PRIVATE_STREETS, "ул. Новая {}")
    west = _Sector(0.0, (-1,), bands, _LANES_PER_CITY_BAND)
    _fill_sector(rng, out, west, settlement=_CITY, target=private_west, names=names)
    x_rail = ncol * s + _RAIL_GAP
    east = _Sector(x_rail + _RAIL_TO_EAST_STREET, (1,), bands, _LANES_PER_CITY_BAND)
    _fill_sector(rng, out, east, settlement=_CITY, target=private_east, names=names)

    # streets
    x_west, x_md_east = west.extent(-1), ncol * s
    x_east_lo, x_east_hi = east.x0, east.extent(1)
    avenue = ncol // 2
    grid_names = _Names(_CITY_GRID_STREETS, "ул. Центральная {}")
    streets: list[_AxisStreet] = []
    crossing_rows = sorted({0, nrow, nrow // 2} if nrow >= 3 else {0, nrow})
    for j in range(nrow + 1):
        name = grid_names.next()
        highway = "secondary" if j in crossing_rows else "tertiary"
        if j in crossing_rows:
            streets.append(_AxisStreet(True, j * s, x_west, x_east_hi, name, highway))
        else:
            streets.append(_AxisStreet(True, j * s, x_west, x_md_east, name, highway))
            streets.append(_AxisStreet(True, j * s, x_east_lo, x_east_hi, name, "residential"))
    for i in range(ncol + 1):
        if i == avenue:
            streets.append(_AxisStreet(False, i * s, 0.0, nrow * s, _CITY_AVENUE, "primary"))
        else:
            streets.append(_AxisStreet(False, i * s, 0.0, nrow * s, grid_names.next(), "tertiary"))
    streets += _sector_streets(west, first_cross=1, lane_highway="residential")
    streets.append(_AxisStreet(False, x_east_lo, 0.0, nrow * s, "ул. Привокзальная", "tertiary"))
    streets += _sector_streets(
        east, first_cross=west.used[-1] + 1, lane_highway="residential"
    )
    frame = _CityFrame(
        x_rail=x_rail,
        x_west=x_west,
        x_avenue=avenue * s,
        y_top=nrow * s,
        y_mid=(nrow // 2) * s,
        crossing_ys=[j * s for j in crossing_rows],
    )
    return out, streets, frame


def _village(
    rng: np.random.Generator, settlement: _Settlement, target: int
) -> tuple[_Buildings, list[_AxisStreet]]:
    """A village of private houses around a main street (local metres, origin at the
    southern end of the main street)."""
    out = _Buildings()
    houses = target / _EXPECTED_HOUSE_RESIDENTS
    n_bands = max(1, min(4, round(houses / 400)))
    bands = [(j * _VILLAGE_BAND, (j + 1) * _VILLAGE_BAND) for j in range(n_bands)]
    names = _Names(_VILLAGE_STREETS, "ул. Новая {}")
    main = names.next()
    # public buildings along the main street, between the lanes of the middle band
    lo, hi = bands[n_bands // 2]
    step = (hi - lo) / (_VILLAGE_LANES + 1)
    spots = [
        (side, lo + (k + 1.5) * step) for k in range(_VILLAGE_LANES - 1) for side in (1, -1)
    ]
    numbers = {1: 1, -1: 2}
    for function, (side, y) in zip(
        ("akimat", "school", "post_office", "clinic", "shop"), spots, strict=False
    ):
        out.add(
            x=side * 25.0 + rng.uniform(-2, 2), y=y + rng.uniform(-2, 2), settlement=settlement,
            address=f"{main}, {numbers[side]}", **_non_residential(rng, function),
        )
        numbers[side] += 2
    sector = _Sector(0.0, (1, -1), bands, _VILLAGE_LANES)
    _fill_sector(rng, out, sector, settlement=settlement, target=target, names=names)
    x_lo, x_hi = sector.extent(-1), sector.extent(1)
    streets = [_AxisStreet(False, 0.0, 0.0, n_bands * _VILLAGE_BAND, main, "tertiary")]
    for j in range(n_bands + 1):
        streets.append(
            _AxisStreet(True, j * _VILLAGE_BAND, x_lo, x_hi, names.next(), "residential")
        )
    streets += _sector_streets(sector, first_cross=1, lane_highway="residential")
    return out, streets


def _bounds(b: _Buildings) -> tuple[float, float, float, float]:
    return min(b.x), min(b.y), max(b.x), max(b.y)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def synthesize_baikonur(*, seed: int = 2021, scale: float = 1.0) -> SyntheticRegister:
    """Generate a synthetic Stage-1 register shaped like Baikonur and its two villages.

    Parameters
    ----------
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed and scale give
        identical layers.
    scale
        Multiplies the number of residents (and so of buildings). At ``scale=1``
        the register has 76,019 residents: 69,019 in the city, 4,500 in Toretam
        and 2,500 in Akay. Small values (``0.05``) give a tiny register that still
        has the city, both villages, the barriers, the crossings and candidate
        registration points in every settlement. Must lie in ``(0, 10]``.

    Returns
    -------
    SyntheticRegister
        All layers in EPSG:4326 and the metadata (``synthetic="true"``).

    Raises
    ------
    ConfigError
        If ``scale`` is not a number in ``(0, 10]``.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 10):
        raise ConfigError(f"scale must be a number in (0, 10], got {scale!r}")
    rng = np.random.default_rng(seed)
    targets = {st.settlement_id: max(1, round(st.residents * scale)) for st in _SETTLEMENTS}

    # --- city ---------------------------------------------------------------------------
    city, city_streets, frame = _city(rng, targets[_CITY.settlement_id], scale)
    _trim_settlement(rng, city, _CITY, targets[_CITY.settlement_id])
    cx0, cy0, cx1, cy1 = _bounds(city)
    centre = ((cx0 + cx1) / 2, (cy0 + cy1) / 2)
    x_rail, y_top = frame.x_rail, frame.y_top

    # --- villages -------------------------------------------------------------------------
    toretam, toretam_streets = _village(rng, _TORETAM, targets[_TORETAM.settlement_id])
    _trim_settlement(rng, toretam, _TORETAM, targets[_TORETAM.settlement_id])
    akay, akay_streets = _village(rng, _AKAY, targets[_AKAY.settlement_id])
    _trim_settlement(rng, akay, _AKAY, targets[_AKAY.settlement_id])

    tx0, ty0, tx1, ty1 = _bounds(toretam)
    t_dx = x_rail - 400.0 - (tx1 + _HOUSE_END_GAP)  # whole village west of the railway
    t_cx = t_dx + (tx0 + tx1) / 2
    t_dy = centre[1] + math.sqrt(max(_TORETAM_DISTANCE**2 - (t_cx - centre[0]) ** 2, 0.0))
    t_dy -= (ty0 + ty1) / 2
    ax0, ay0, ax1, ay1 = _bounds(akay)
    a_dx = centre[0] + _AKAY_OFFSET[0] - (ax0 + ax1) / 2
    a_dy = centre[1] + _AKAY_OFFSET[1] - (ay0 + ay1) / 2

    buildings = _Buildings()
    buildings.extend(city)
    buildings.extend(toretam, dx=t_dx, dy=t_dy)
    buildings.extend(akay, dx=a_dx, dy=a_dy)

    # --- streets --------------------------------------------------------------------------
    net = _StreetNet()
    net.add_grid(city_streets, _CITY.settlement_id)
    net.add_grid([st.shifted(t_dx, t_dy) for st in toretam_streets], _TORETAM.settlement_id)
    net.add_grid([st.shifted(a_dx, a_dy) for st in akay_streets], _AKAY.settlement_id)
    # road to Toretam: from the northern street of the city, west of the railway
    x_avenue = frame.x_avenue
    net.add_road(
        [(x_avenue, y_top), (x_avenue, y_top + 300.0), (t_dx, t_dy - 300.0), (t_dx, t_dy)],
        "автодорога Байконур — Торетам", "primary", "",
    )
    # road to Akay: from the western edge of the city
    a_east = a_dx + max(st.hi for st in akay_streets if st.horizontal)
    y_mid, x_west = frame.y_mid, frame.x_west
    net.add_road(
        [(x_west, y_mid), (x_west - 500.0, y_mid), (a_east + 500.0, a_dy), (a_east, a_dy)],
        "автодорога Байконур — Акай", "secondary", "",
    )

    # --- barriers and crossings -------------------------------------------------------------
    phase = rng.uniform(0, 2 * math.pi)
    river_x = np.arange(cx0 - 25_000.0, cx1 + 8_000.0, 250.0)
    river_y = cy0 - 280.0 + 45.0 * np.sin(river_x / 1_100.0 + phase)
    x_bridge = x_avenue
    y_bridge = float(np.interp(x_bridge, river_x, river_y))
    pos = int(np.searchsorted(river_x, x_bridge))
    river_coords = list(zip(river_x.tolist(), river_y.tolist(), strict=True))
    if pos < len(river_x) and river_x[pos] == x_bridge:
        river_coords[pos] = (x_bridge, y_bridge)
    else:
        river_coords.insert(pos, (x_bridge, y_bridge))
    net.add_road(
        [(x_bridge, 0.0), (x_bridge, y_bridge), (x_bridge, y_bridge - 1_500.0)],
        "мост через Сырдарью", "primary", "",
    )
    rail_coords = [(x_rail, y) for y in sorted({-3_000.0, y_top + 12_000.0, *frame.crossing_ys})]
    crossing_pts: list[tuple[str, str, tuple[float, float]]] = [
        ("level_crossing", "R2", (x_rail, y)) for y in frame.crossing_ys
    ]
    crossing_pts.append(("bridge", "R1", (x_bridge, y_bridge)))

    # --- to EPSG:4326 -----------------------------------------------------------------------
    to_utm = Transformer.from_crs(WGS84, BUILD_CRS, always_xy=True)
    ox, oy = to_utm.transform(*CITY_CENTRE_LONLAT)
    offset = np.array([ox - centre[0], oy - centre[1]])

    def _reproject(geoms: Sequence[Any]) -> gpd.GeoSeries:
        shifted = shapely.transform(np.asarray(geoms, dtype=object), lambda c: c + offset)
        return gpd.GeoSeries(shifted, crs=BUILD_CRS).to_crs(WGS84)

    local_pts = shapely.points(np.array(buildings.x), np.array(buildings.y))
    width = max(6, len(str(len(buildings))))
    bld = gpd.GeoDataFrame(
        {
            "building_id": _obj([f"B{i:0{width}d}" for i in range(1, len(buildings) + 1)]),
            "settlement_id": _obj([s.settlement_id for s in buildings.settlement]),
            "settlement_name": _obj([s.name for s in buildings.settlement]),
            "address": _obj(buildings.address),
            "kind": _obj(buildings.kind),
            **{c: np.asarray(getattr(buildings, c), dtype=np.int64) for c in _INT_COLUMNS},
            "function": _obj(buildings.function),
        },
        geometry=_reproject(list(local_pts)).values,
        crs=WGS84,
    )

    settlement_rows = []
    polys = []
    for st in _SETTLEMENTS:
        idx = [i for i, s in enumerate(buildings.settlement) if s is st]
        xs = np.array([buildings.x[i] for i in idx])
        ys = np.array([buildings.y[i] for i in idx])
        m = _POLYGON_MARGIN
        polys.append(shapely.box(xs.min() - m, ys.min() - m, xs.max() + m, ys.max() + m))
        settlement_rows.append(st)
    settlements = gpd.GeoDataFrame(
        {
            "settlement_id": _obj([s.settlement_id for s in settlement_rows]),
            "settlement_name": _obj([s.name for s in settlement_rows]),
            "settlement_type": _obj([s.kind for s in settlement_rows]),
        },
        geometry=_reproject(polys).values,
        crs=WGS84,
    )

    nodes, edges = _street_gdfs(net, _reproject)

    barriers = gpd.GeoDataFrame(
        {
            "barrier_id": _obj(["R1", "R2"]),
            "kind": _obj(["river", "railway"]),
            "name": _obj(["Сырдарья", "железная дорога"]),
        },
        geometry=_reproject([LineString(river_coords), LineString(rail_coords)]).values,
        crs=WGS84,
    )
    crossings = gpd.GeoDataFrame(
        {
            "crossing_id": _obj([f"X{i}" for i in range(1, len(crossing_pts) + 1)]),
            "kind": _obj([k for k, _, _ in crossing_pts]),
            "barrier_id": _obj([b for _, b, _ in crossing_pts]),
        },
        geometry=_reproject([Point(xy) for _, _, xy in crossing_pts]).values,
        crs=WGS84,
    )

    total = int(bld["residents"].sum())
    metadata = {
        "synthetic": "true",
        "generator": "districting.synth",
        "generator_version": "1",
        "seed": str(seed),
        "scale": str(scale),
        "crs": WGS84,
        "build_crs": BUILD_CRS,
        "total_residents": str(total),
        "description": (
            "SYNTHETIC Stage-1 address register shaped like Baikonur, Kazakhstan (the city and "
            "the villages Toretam and Akay). This is not real census data: every building, "
            "address, count and street is generated from a random seed. KATO-style settlement "
            "codes are illustrative, not official."
        ),
        "population_reference": "76019 residents of Baikonur on 1 October 2020 (MISSION.md)",
    }
    logger.info(
        "synthesized %d buildings, %d residents, %d street nodes, %d street edges (seed=%s, "
        "scale=%s)", len(bld), total, len(nodes), len(edges), seed, scale,
    )
    return SyntheticRegister(
        buildings=bld, settlements=settlements, street_nodes=nodes, street_edges=edges,
        barriers=barriers, crossings=crossings, metadata=metadata,
    )


def _obj(values: Sequence[str]) -> pd.Series:
    """A column of Python ``str`` with dtype ``object`` (not pandas' ``str`` dtype)."""
    return pd.Series(list(values), dtype=object)


def _street_gdfs(net: _StreetNet, reproject: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """osmnx-style node and edge GeoDataFrames (EPSG:4326) of ``net``."""
    node_xy = list(net.node_ids)
    node_geom = reproject([Point(xy) for xy in node_xy])
    street_count = np.zeros(len(node_xy) + 1, dtype=np.int64)
    for u, v, *_ in net.edges:
        street_count[u] += 1
        street_count[v] += 1
    ids = np.array(list(net.node_ids.values()), dtype=np.int64)
    nodes = gpd.GeoDataFrame(
        {
            "y": node_geom.y.to_numpy(),
            "x": node_geom.x.to_numpy(),
            "street_count": street_count[ids],
            "settlement_id": _obj(net.node_settlement),
        },
        geometry=node_geom.values,
        crs=WGS84,
    )
    nodes.index = pd.Index(ids, name="osmid")

    geod = Geod(ellps="WGS84")
    forward = reproject([LineString(e[6]) for e in net.edges])
    lengths = np.array([round(geod.geometry_length(g), 3) for g in forward], dtype=float)
    backward = shapely.reverse(forward.to_numpy())
    n = len(net.edges)
    us = np.array([e[0] for e in net.edges], dtype=np.int64)
    vs = np.array([e[1] for e in net.edges], dtype=np.int64)
    index = pd.MultiIndex.from_arrays(
        [np.concatenate([us, vs]), np.concatenate([vs, us]), np.zeros(2 * n, dtype=np.int64)],
        names=["u", "v", "key"],
    )
    ways = np.array([e[2] for e in net.edges], dtype=np.int64)
    edges = gpd.GeoDataFrame(
        {
            "osmid": np.concatenate([ways, ways]),
            "name": _obj([e[3] for e in net.edges] * 2),
            "highway": _obj([e[4] for e in net.edges] * 2),
            "oneway": np.zeros(2 * n, dtype=bool),
            "reversed": np.concatenate([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)]),
            "length": np.concatenate([lengths, lengths]),
            "settlement_id": _obj([e[5] for e in net.edges] * 2),
        },
        geometry=np.concatenate([forward.to_numpy(), backward]),
        crs=WGS84,
    )
    edges.index = index
    order = np.lexsort((edges.index.get_level_values("v"), edges.index.get_level_values("u")))
    return nodes, edges.iloc[order]


def write_register(register: SyntheticRegister, path: str | Path) -> Path:
    """Write the register as one GeoPackage, atomically and byte-reproducibly.

    The layers are written in :data:`LAYER_NAMES` order by :func:`write_layers`.

    Parameters
    ----------
    register
        The register to write.
    path
        Destination ``.gpkg`` file; replaced if it exists.

    Returns
    -------
    Path
        The path written.
    """
    path = write_layers(register.layers(), register.metadata, path)
    logger.debug("wrote synthetic register to %s", path)
    return path


def write_layers(
    layers: dict[str, gpd.GeoDataFrame], metadata: dict[str, str], path: str | Path
) -> Path:
    """Write GeoDataFrames as layers of one GeoPackage, atomically and byte-reproducibly.

    The layers are written in the order of ``layers``; the street layers
    (``street_nodes``, ``street_edges``) get ``osmid`` / ``u``, ``v``, ``key`` as
    ordinary columns. ``metadata`` is stored as GeoPackage metadata of every layer
    (``description`` also becomes the layers' ``gpkg_contents.description``). It is
    deliberately not written as dataset-level metadata: with GDAL 3.12, any later
    read of a GeoPackage carrying dataset metadata leaves a ``.aux.xml`` file next
    to it. The GeoPackage timestamps are fixed, so the same layers give the same
    bytes.

    Parameters
    ----------
    layers
        The layers by name, in the order they are written.
    metadata
        Metadata stored with every layer.
    path
        Destination ``.gpkg`` file; replaced if it exists.

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".gpkg", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _FIXED_GPKG_DATE})
    try:
        for name, gdf in layers.items():
            frame = gdf.reset_index() if name in ("street_nodes", "street_edges") else gdf
            pyogrio.write_dataframe(
                frame.reset_index(drop=True), tmp, layer=name, driver="GPKG",
                layer_metadata=dict(metadata),
            )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    return path


def read_register_metadata(path: str | Path) -> dict[str, str]:
    """Read the metadata of a register GeoPackage.

    Parameters
    ----------
    path
        A GeoPackage written by :func:`write_register`.

    Returns
    -------
    dict[str, str]
        The metadata of the ``buildings`` layer, merged over any dataset-level
        metadata (empty if there is none). GDAL's reserved ``DESCRIPTION`` and
        ``IDENTIFIER`` items are returned under lower-case keys.

    Raises
    ------
    InputFileError
        If the file does not exist, cannot be read or has no ``buildings`` layer.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"register file not found: {path}")
    try:
        info = pyogrio.read_info(path, layer=LAYER_NAMES[0])
    except Exception as exc:  # pyogrio raises several DataSourceError subclasses
        raise InputFileError(f"cannot read register metadata from {path}: {exc}") from exc
    merged = {**(info.get("dataset_metadata") or {}), **(info.get("layer_metadata") or {})}
    reserved = {"DESCRIPTION": "description", "IDENTIFIER": "identifier"}
    return {reserved.get(str(k), str(k)): str(v) for k, v in merged.items()}


def read_register(path: str | Path) -> SyntheticRegister:
    """Read a register GeoPackage written by :func:`write_register`.

    Parameters
    ----------
    path
        The GeoPackage.

    Returns
    -------
    SyntheticRegister
        The layers (street indexes restored) and the metadata.

    Raises
    ------
    InputFileError
        If the file does not exist or a layer is missing.
    """
    path = Path(path)
    metadata = read_register_metadata(path)
    present = {str(row[0]) for row in pyogrio.list_layers(path)}
    missing = [name for name in LAYER_NAMES if name not in present]
    if missing:
        raise InputFileError(f"{path} is not a register GeoPackage: missing layer(s) {missing}")
    layers = {name: pyogrio.read_dataframe(path, layer=name) for name in LAYER_NAMES}
    layers["street_nodes"] = layers["street_nodes"].set_index("osmid")
    layers["street_edges"] = layers["street_edges"].set_index(["u", "v", "key"])
    return SyntheticRegister(metadata=metadata, **layers)
