"""Planning norms: read a YAML configuration into typed, validated settings."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from districting.errors import ConfigError

CANDIDATE_FUNCTIONS = ("public_service_centre", "akimat", "school", "post_office")


@dataclass(frozen=True)
class WorkloadNorms:
    """How a unit's door-to-door workload, in interviewer minutes, is estimated.

    ``basis="workload"`` counts interview minutes for the households expected to
    need a visit (``households × (1 − online share)``), a callback allowance, a fixed
    per-building overhead and the walk of the district's tour. ``basis="residents"``
    is the population-only norm.

    The online share of a unit is, by precedence: its own value in the buildings
    column ``online_share_column`` (where that is set and the cell is not blank), the
    share for its settlement type in ``online_share_by_type`` (types come from the
    ``settlement_type`` column), then the global ``online_share``.
    """

    basis: str = "workload"
    interview_minutes: float = 22.0
    online_share: float = 0.3
    online_share_by_type: dict[str, float] = field(default_factory=dict)
    online_share_column: str | None = None
    callback_share: float = 0.15
    minutes_per_building: float = 5.0
    household_size: float = 2.7
    walking_speed_kmh: float = 4.5


@dataclass(frozen=True)
class CountingNorms:
    """The target and hard bounds for one counting district (one interviewer)."""

    working_days: int = 30
    hours_per_day: float = 4.0
    target_utilization: float = 1.0
    tolerance: float = 0.10
    target_residents: float = 450.0

    @property
    def capacity_minutes(self) -> float:
        """Minutes one interviewer can work over the door-to-door period."""
        return self.working_days * self.hours_per_day * 60.0


@dataclass(frozen=True)
class InstructorNorms:
    """Span of control of one instructor-controller, in counting districts."""

    span_min: int = 5
    span_max: int = 8
    span_target: float = 6.5
    #: IDs' workload lies within ± this share of the settlement's mean ID workload.
    tolerance: float = 0.15


@dataclass(frozen=True)
class RegistrationNorms:
    """How stationary registration points are chosen (a capacitated p-median).

    ``p`` is ``points`` when set, else ``residents / residents_per_point`` rounded.
    A point serves at most ``capacity_share × residents / p`` residents (at least the
    largest CD), so that no point takes most of the settlement.
    """

    residents_per_point: float = 15000.0
    points: int | None = None
    functions: tuple[str, ...] = CANDIDATE_FUNCTIONS
    capacity_share: float = 1.5
    time_limit: float = 20.0


@dataclass(frozen=True)
class StaffingNorms:
    """Who else the field organisation needs besides one interviewer per CD."""

    reserve_share: float = 0.10
    staff_per_point: int = 2
    point_days: int = 30
    instructor_days: int = 30


@dataclass(frozen=True)
class GraphNorms:
    """How the unit adjacency graph is built.

    ``components`` is the policy for parts of a settlement cut off by barriers:
    ``"separate"`` draws their CDs separately (no CD crosses the barrier; instructor
    and registration districts may, over the flagged bridging edge), ``"bridge"``
    lets CDs cross on the flagged edge too.

    ``max_detour`` (off by default) uses the street network to cut edges between
    units that cannot walk to each other without a detour longer than
    ``max_detour × straight line + detour_slack_m``.

    ``contiguity`` is ``"tiles"`` (Voronoi cells of the unit points, clipped to the
    settlement: for point registers and building footprints) or ``"rook"`` (the
    units' own polygons, adjacent along a shared border: for registers of blocks or
    parcels that tile the ground). Queen contiguity is not offered, because districts
    joined only at a corner would not be one polygon on the map.
    """

    settlement_margin_m: float = 150.0
    crossing_radius_m: float = 120.0
    components: str = "separate"
    max_detour: float | None = None
    detour_slack_m: float = 150.0
    contiguity: str = "tiles"


@dataclass(frozen=True)
class Config:
    """All planning settings; every field has a documented default."""

    name: str = "default"
    seed: int = 2021
    period: str = "2021-10-01/2021-10-30"
    workload: WorkloadNorms = field(default_factory=WorkloadNorms)
    counting: CountingNorms = field(default_factory=CountingNorms)
    instructor: InstructorNorms = field(default_factory=InstructorNorms)
    registration: RegistrationNorms = field(default_factory=RegistrationNorms)
    staffing: StaffingNorms = field(default_factory=StaffingNorms)
    graph: GraphNorms = field(default_factory=GraphNorms)
    time_limit: float = 60.0


_SECTIONS: dict[str, type] = {
    "workload": WorkloadNorms,
    "counting": CountingNorms,
    "instructor": InstructorNorms,
    "registration": RegistrationNorms,
    "staffing": StaffingNorms,
    "graph": GraphNorms,
}


def _coerce(value: Any, default: Any, where: str, *, annotation: str = "") -> Any:
    """Convert a YAML value to the type of its default, or explain why not."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise ConfigError(f"{where}: expected a mapping of names to numbers, got {value!r}")
        return {k: float(v) for k, v in value.items()}
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of names, got {value!r}")
        return tuple(value)
    if default is None:  # optional number: whole for counts (int | None), any for ratios
        if value is None:
            return None
        if annotation.startswith("str"):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: expected a column name or null, got {value!r}")
            return value.strip()
        whole = annotation.startswith("int")
        allowed = int if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{where}: expected {kind} or null, got {value!r}")
        return value
    return value


def _section(cls: type, raw: Any, name: str, source: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: section '{name}' must be a mapping")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} in section '{name}' "
            f"(known: {', '.join(sorted(known))})"
        )
    annotations = {f.name: str(f.type) for f in fields(cls)}
    values = {
        key: _coerce(value, getattr(defaults, key), f"{source}: {name}.{key}",
                     annotation=annotations[key])
        for key, value in raw.items()
    }
    return cls(**values)


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> Config:
    """Build a :class:`Config` from a parsed mapping, checking every key and value."""
    known_top = {"name", "seed", "period", "time_limit", *_SECTIONS}
    unknown = sorted(set(raw) - known_top)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known_top))})"
        )
    base = Config()
    kwargs: dict[str, Any] = {
        name: _section(cls, raw.get(name), name, source) for name, cls in _SECTIONS.items()
    }
    for key in ("name", "seed", "period", "time_limit"):
        if key in raw:
            kwargs[key] = _coerce(raw[key], getattr(base, key), f"{source}: {key}")
    config = Config(**kwargs)
    _check_ranges(config, source)
    return config


def _check_ranges(config: Config, source: str) -> None:
    problems = []
    w, c, i = config.workload, config.counting, config.instructor
    if w.basis not in ("workload", "residents"):
        problems.append(f"workload.basis must be 'workload' or 'residents', got {w.basis!r}")
    if not 0.0 <= w.online_share < 1.0:
        problems.append(f"workload.online_share must be in [0, 1), got {w.online_share}")
    for kind, share in sorted(w.online_share_by_type.items()):
        if not 0.0 <= share < 1.0:
            problems.append(f"workload.online_share_by_type.{kind} must be in [0, 1), got {share}")
    if w.interview_minutes <= 0 or w.household_size <= 0:
        problems.append("workload.interview_minutes and household_size must be positive")
    if w.walking_speed_kmh <= 0:
        problems.append("workload.walking_speed_kmh must be > 0")
    if w.callback_share < 0 or w.minutes_per_building < 0:
        problems.append("workload.callback_share and minutes_per_building must be ≥ 0")
    if c.working_days <= 0 or c.hours_per_day <= 0 or c.target_utilization <= 0:
        problems.append("counting.working_days, hours_per_day, target_utilization must be > 0")
    if not 0.0 < c.tolerance < 1.0:
        problems.append(f"counting.tolerance must be in (0, 1), got {c.tolerance}")
    if c.target_residents <= 0:
        problems.append("counting.target_residents must be > 0")
    if not 1 <= i.span_min <= i.span_max:
        problems.append(f"instructor.span_min..span_max must satisfy 1 ≤ min ≤ max, got "
                        f"{i.span_min}..{i.span_max}")
    if not 0.0 < i.tolerance < 1.0:
        problems.append(f"instructor.tolerance must be in (0, 1), got {i.tolerance}")
    r, st = config.registration, config.staffing
    if r.residents_per_point <= 0:
        problems.append("registration.residents_per_point must be > 0")
    if r.capacity_share < 1.0:
        problems.append(f"registration.capacity_share must be ≥ 1 (a multiple of the mean "
                        f"point's residents), got {r.capacity_share}")
    if r.time_limit <= 0:
        problems.append("registration.time_limit must be > 0 seconds")
    if not 0.0 <= st.reserve_share < 1.0:
        problems.append(f"staffing.reserve_share must be in [0, 1), got {st.reserve_share}")
    for key in ("staff_per_point", "point_days", "instructor_days"):
        if getattr(st, key) < 0:
            problems.append(f"staffing.{key} must be ≥ 0, got {getattr(st, key)}")
    if config.graph.components not in ("separate", "bridge"):
        problems.append(f"graph.components must be 'separate' or 'bridge', got "
                        f"{config.graph.components!r}")
    if config.graph.contiguity == "queen":
        problems.append("graph.contiguity 'queen' is not offered: districts joined only at a "
                        "corner are not one polygon on the map; use 'rook'")
    elif config.graph.contiguity not in ("tiles", "rook"):
        problems.append(f"graph.contiguity must be 'tiles' or 'rook', got "
                        f"{config.graph.contiguity!r}")
    detour = config.graph.max_detour
    if detour is not None and detour < 1:
        problems.append(f"graph.max_detour must be ≥ 1 (a ratio to the straight line), "
                        f"got {detour}")
    if config.registration.points is not None and config.registration.points < 1:
        problems.append(f"registration.points must be at least 1, got "
                        f"{config.registration.points}")
    if config.time_limit <= 0:
        problems.append("time_limit must be > 0 seconds")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def load_config(path: str | Path | None) -> Config:
    """Read a YAML configuration file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # one line: the position and the parser's reason
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML{where}: {reason}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return config_from_dict(raw, source=str(path))
