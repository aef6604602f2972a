"""What OSM tags mean for a register: building types, functions, levels, addresses, norms.

Which ``building`` values are collective, residential (single- or multi-dwelling) or
non-residential; which tags and surrounding areas make a generic building
non-residential; the register ``function`` of a building or point of interest; the
``building:levels`` count; the address of ``addr:*`` tags; which ``highway`` ways a
person can walk; and the :class:`DensityNorms` that turn a footprint into estimates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from districting.errors import ConfigError

# --- building types ------------------------------------------------------------------------
_COLLECTIVE_TYPES = frozenset({"dormitory", "barracks"})
_SINGLE_DWELLING_TYPES = frozenset({
    "house", "detached", "semidetached_house", "bungalow", "farm", "cabin", "static_caravan",
    "houseboat", "villa",
})
_RESIDENTIAL_TYPES = _SINGLE_DWELLING_TYPES | {"apartments", "residential", "terrace"}
_NON_RESIDENTIAL_TYPES = frozenset({
    "commercial", "retail", "office", "industrial", "warehouse", "supermarket", "kiosk",
    "school", "kindergarten", "university", "college", "hospital", "public", "civic",
    "government", "church", "chapel", "cathedral", "mosque", "temple", "synagogue", "shrine",
    "monastery", "religious", "train_station", "transportation", "garage", "garages",
    "carport", "parking", "shed", "hut", "roof", "greenhouse", "barn", "stable", "cowshed",
    "sty", "farm_auxiliary", "service", "transformer_tower", "water_tower", "storage_tank",
    "silo", "bunker", "hangar", "sports_hall", "sports_centre", "stadium", "grandstand",
    "pavilion", "hotel", "fire_station", "toilets", "boathouse", "construction", "ruins",
    "tech_cab", "gatehouse", "bridge", "manufacture", "digester", "tower", "museum",
    "conservatory", "riding_hall", "slurry_tank", "power", "container", "mall",
})
# building values for which `default_levels` is looked up as "yes"
_GENERIC_KEY = "yes"

# amenities that are street furniture or parking, not an activity inside a building
_MINOR_AMENITIES = frozenset({
    "bench", "waste_basket", "waste_disposal", "vending_machine", "atm", "parking",
    "parking_entrance", "parking_space", "bicycle_parking", "motorcycle_parking", "post_box",
    "telephone", "recycling", "drinking_water", "charging_station", "shelter", "clock",
    "fountain", "grit_bin", "hunting_stand", "emergency_phone", "bbq", "letter_box",
    "loading_dock", "water_point", "watering_place", "smoking_area",
})
# any of these tags on a generic building makes it non-residential
_NON_RESIDENTIAL_KEYS = (
    "amenity", "shop", "office", "craft", "tourism", "leisure", "healthcare", "man_made",
    "public_transport", "railway", "aeroway", "power", "military", "industrial",
)
_NON_RESIDENTIAL_LANDUSE = frozenset({
    "industrial", "commercial", "retail", "garages", "railway", "military", "construction",
    "cemetery", "religious", "depot", "port", "quarry", "landfill", "brownfield",
})
_NON_RESIDENTIAL_AREA_AMENITIES = frozenset({
    "school", "kindergarten", "college", "university", "hospital", "clinic", "parking",
    "fuel", "prison", "fire_station", "police", "townhall", "place_of_worship", "marketplace",
    "bus_station", "grave_yard",
})
_PUBLIC_SERVICE_HINT = re.compile(
    r"public[ -]service|цон|центр обслуживания населения|мфц|мои документы|многофункциональн"
    r"|госуслуг|халыққа қызмет|bürgerservice|bürgerbüro|servicecenter",
    re.IGNORECASE,
)
_FUNCTION_PRECEDENCE = (
    "akimat", "public_service_centre", "post_office", "school", "clinic", "kindergarten",
    "office", "shop", "industrial", "dormitory", "hostel",
)

# --- highways: the ways a person can walk, and the minor ones among them ---------------
_NOT_WALKABLE = frozenset({
    "motorway", "motorway_link", "construction", "proposed", "abandoned", "platform",
    "raceway", "razed", "bus_guideway", "escape", "rest_area", "services", "disused",
})
_MINOR_PATHS = frozenset({
    "footway", "path", "cycleway", "steps", "track", "bridleway", "corridor", "elevator",
})


def _default_m2_per_dwelling() -> dict[str, float]:
    return {
        "apartments": 70.0, "residential": 70.0, "yes": 70.0, "terrace": 110.0,
        "dormitory": 30.0, "barracks": 30.0,
    }


def _default_levels() -> dict[str, int]:
    return {
        "apartments": 5, "residential": 3, "yes": 3, "terrace": 2, "dormitory": 4,
        "barracks": 2, "house": 1, "detached": 1, "semidetached_house": 1, "bungalow": 1,
        "farm": 1, "cabin": 1, "static_caravan": 1, "houseboat": 1, "villa": 2,
    }


@dataclass(frozen=True)
class DensityNorms:
    """Norms that turn a footprint into dwellings and residents.

    Attributes
    ----------
    m2_per_dwelling
        Gross floor area per dwelling (flat plus its share of stairs, walls and
        corridors) by ``building`` value, for multi-dwelling buildings: apartments
        70 m², a generic residential building (``yes``, ``residential``) 70 m², a
        terrace row 110 m², a dormitory or barracks room 30 m². Values missing here
        use the ``yes`` entry.
    residents_per_dwelling
        Residents of an occupied dwelling.
    occupancy
        Share of dwellings that are occupied.
    default_levels
        Levels of a building without ``building:levels`` by ``building`` value
        (apartments 5, generic 3, houses 1, ...); missing values use ``yes``.
        Non-residential buildings without levels get 1 floor.
    house_max_m2
        A generic residential building with a smaller footprint and at most two
        levels is one house with one dwelling.
    min_generic_m2
        A generic building with a smaller footprint is non-residential.
    max_generic_m2
        A generic building with a larger footprint is non-residential.
    local_levels_min_tagged
        When at least this many multi-dwelling buildings of the file have
        ``building:levels``, their median replaces ``default_levels`` for the
        others; 0 turns this off.

    Raises
    ------
    ConfigError
        If a number is not positive, ``occupancy`` exceeds 1 or the ``yes``
        entries are missing.
    """

    m2_per_dwelling: dict[str, float] = field(default_factory=_default_m2_per_dwelling)
    residents_per_dwelling: float = 2.7
    occupancy: float = 0.95
    default_levels: dict[str, int] = field(default_factory=_default_levels)
    house_max_m2: float = 200.0
    min_generic_m2: float = 30.0
    max_generic_m2: float = 5_000.0
    local_levels_min_tagged: int = 10

    def __post_init__(self) -> None:
        for name in ("residents_per_dwelling", "occupancy", "house_max_m2", "max_generic_m2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"DensityNorms.{name} must be a positive number, got {value!r}")
        if self.occupancy > 1:
            raise ConfigError(f"DensityNorms.occupancy must be at most 1, got {self.occupancy!r}")
        if _GENERIC_KEY not in self.m2_per_dwelling or _GENERIC_KEY not in self.default_levels:
            raise ConfigError("DensityNorms needs a 'yes' entry in m2_per_dwelling and "
                             "default_levels")
        if any(not (math.isfinite(v) and v > 0) for v in self.m2_per_dwelling.values()):
            raise ConfigError("DensityNorms.m2_per_dwelling values must be positive")
        if any(int(v) < 1 for v in self.default_levels.values()):
            raise ConfigError("DensityNorms.default_levels values must be at least 1")

    def m2(self, building: str) -> float:
        """Gross floor area per dwelling of a ``building`` value."""
        return float(self.m2_per_dwelling.get(building, self.m2_per_dwelling[_GENERIC_KEY]))

    def levels(self, building: str) -> int:
        """Default number of levels of a ``building`` value."""
        return int(self.default_levels.get(building, self.default_levels[_GENERIC_KEY]))


def _tag(frame: pd.DataFrame, key: str) -> np.ndarray:
    """A tag's values as an object array of stripped ``str`` ("" where missing)."""
    if key not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return np.array(
        ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
         for v in frame[key]],
        dtype=object,
    )


def _levels(text: str) -> int | None:
    """``building:levels`` as a whole number ≥ 1 (the largest of "5;9", "2.5" → 2)."""
    numbers = [float(m) for m in re.findall(r"\d+(?:\.\d+)?", text.replace(",", "."))]
    if not numbers:
        return None
    value = int(max(numbers))
    return value if 1 <= value <= 200 else None


def _address(street: str, place: str, housenumber: str) -> str:
    where = street or place
    return f"{where}, {housenumber}" if where and housenumber else ""


def _obj(values: Iterable[Any]) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def _poi_function(
    amenity: str, office: str, shop: str, building: str, tourism: str, names: str
) -> str:
    """The register function of one OSM object from its tags ("" when none)."""
    if amenity == "townhall" or office == "government":
        return "public_service_centre" if _PUBLIC_SERVICE_HINT.search(names) else "akimat"
    if _PUBLIC_SERVICE_HINT.search(names) and (amenity or office):
        return "public_service_centre"
    if amenity == "post_office":
        return "post_office"
    if amenity == "school" or building == "school":
        return "school"
    if amenity in ("clinic", "doctors", "hospital") or building == "hospital":
        return "clinic"
    if amenity == "kindergarten" or building == "kindergarten":
        return "kindergarten"
    if office:
        return "office"
    if shop:
        return "shop"
    if building in ("industrial", "warehouse", "manufacture"):
        return "industrial"
    if building == "dormitory":
        return "dormitory"
    if tourism == "hostel":
        return "hostel"
    return ""


def _best_function(candidates: Iterable[str]) -> str:
    present = {c for c in candidates if c}
    return next((f for f in _FUNCTION_PRECEDENCE if f in present), "")


def _functions(frame: pd.DataFrame) -> list[str]:
    amenity, office, shop = _tag(frame, "amenity"), _tag(frame, "office"), _tag(frame, "shop")
    building, tourism = _tag(frame, "building"), _tag(frame, "tourism")
    names = [" ".join(parts) for parts in zip(
        _tag(frame, "name"), _tag(frame, "official_name"), _tag(frame, "operator"),
        _tag(frame, "description"), strict=True)]
    return [
        _poi_function(a, o, s, b, t, n)
        for a, o, s, b, t, n in zip(amenity, office, shop, building, tourism, names, strict=True)
    ]


def _activity(frame: pd.DataFrame) -> np.ndarray:
    """True where an object has a shop, office, craft or service-amenity tag."""
    amenity = _tag(frame, "amenity")
    service = np.array([bool(a) and a not in _MINOR_AMENITIES for a in amenity], dtype=bool)
    return (service | (_tag(frame, "shop") != "") | (_tag(frame, "office") != "")
            | (_tag(frame, "craft") != ""))


def _walkable(tags: Mapping[str, str]) -> bool:
    highway = tags.get("highway", "")
    return bool(highway) and highway not in _NOT_WALKABLE and tags.get("area") != "yes" \
        and tags.get("foot") != "no"
