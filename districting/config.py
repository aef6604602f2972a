"""Planning norms: read a YAML configuration into typed, validated settings."""

from __future__ import annotations

import datetime
import math
import re
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


@dataclass(frozen=True)
class Bounds:
    """The accepted values of one number: an interval, each end closed or open.

    ``note`` (a unit or a reminder of the meaning) is shown after the interval.
    NaN and the infinities are never inside.
    """

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def __contains__(self, value: float) -> bool:
        if not _finite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        return (f"{'(' if self.low_open else '['}{_number(self.low)}, "
                f"{_number(self.high)}{')' if self.high_open else ']'}")


#: The accepted range of every number in the config, in one place (README §7 lists
#: them). ``workload.online_share_by_type`` applies to each share in the mapping;
#: ``registration.points`` and ``graph.max_detour`` may also be null. Besides these,
#: ``instructor.span_min ≤ span_target ≤ span_max`` (see :func:`_check_ranges`).
RANGES: dict[str, Bounds] = {
    "seed": Bounds(0, 2**32 - 1),
    "time_limit": Bounds(0, 86_400, low_open=True, note="seconds"),
    "workload.interview_minutes": Bounds(0, 240, low_open=True, note="minutes"),
    "workload.online_share": Bounds(0, 1, high_open=True),
    "workload.online_share_by_type": Bounds(0, 1, high_open=True),
    "workload.callback_share": Bounds(0, 5, note="(a share of interview time)"),
    "workload.minutes_per_building": Bounds(0, 240, note="minutes"),
    "workload.household_size": Bounds(1, 20, note="residents"),
    "workload.walking_speed_kmh": Bounds(1, 60, note="km/h"),
    "counting.working_days": Bounds(1, 366, note="days"),
    "counting.hours_per_day": Bounds(0, 24, low_open=True, note="hours"),
    "counting.target_utilization": Bounds(0.5, 1.5, note="(a share of one interviewer's "
                                          "capacity)"),
    "counting.tolerance": Bounds(0, 1, low_open=True, high_open=True),
    "counting.target_residents": Bounds(1, 100_000, note="residents"),
    "instructor.span_min": Bounds(1, 100, note="CDs"),
    "instructor.span_max": Bounds(1, 100, note="CDs"),
    "instructor.span_target": Bounds(1, 100, note="CDs"),
    "instructor.tolerance": Bounds(0, 1, low_open=True, high_open=True),
    "registration.residents_per_point": Bounds(100, 1_000_000, note="residents"),
    "registration.points": Bounds(1, 10_000),
    "registration.capacity_share": Bounds(1, 100, note="(a multiple of the mean point's "
                                          "residents)"),
    "registration.time_limit": Bounds(0, 86_400, low_open=True, note="seconds"),
    "staffing.reserve_share": Bounds(0, 1, high_open=True),
    "staffing.staff_per_point": Bounds(0, 100, note="people"),
    "staffing.point_days": Bounds(0, 366, note="days"),
    "staffing.instructor_days": Bounds(0, 366, note="days"),
    "graph.settlement_margin_m": Bounds(0, 10_000, low_open=True, note="metres"),
    "graph.crossing_radius_m": Bounds(0, 10_000, note="metres"),
    "graph.max_detour": Bounds(1, 100, note="(a ratio to the straight line)"),
    "graph.detour_slack_m": Bounds(0, 10_000, note="metres"),
}

#: ``period`` is two ISO dates, start and end, the end not before the start.
_PERIOD = re.compile(r"\s*([0-9]{4}-[0-9]{2}-[0-9]{2})\s*/\s*([0-9]{4}-[0-9]{2}-[0-9]{2})\s*")


def _finite(value: float) -> bool:
    """Whether a number is neither NaN nor infinite (a whole number always is)."""
    return isinstance(value, int) or math.isfinite(value)


def _number(value: float) -> str:
    """A bound or a value as people write it: no ``.0``, no exponent for whole numbers."""
    if isinstance(value, int) or (math.isfinite(value) and value.is_integer()):
        return str(int(value))
    return str(value)


def _shown(value: Any) -> str:
    """``repr`` of a value, cut short: a config may hold a very long number or text."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        text = str(value) if number else repr(value)
    except ValueError:  # a whole number with more digits than Python converts to text
        return "a whole number with too many digits"
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"


def _coerce(value: Any, default: Any, where: str, *, annotation: str = "") -> Any:
    """Convert a YAML value to the type of its default, or explain why not."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_shown(value)}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {_shown(value)}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_shown(value)}")
        return _as_float(value, where)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {_shown(value)}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise ConfigError(
                f"{where}: expected a mapping of names to numbers, got {_shown(value)}")
        return {k: _as_float(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of names, got {_shown(value)}")
        return tuple(value)
    if default is None:  # optional number: whole for counts (int | None), any for ratios
        if value is None:
            return None
        if annotation.startswith("str"):
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"{where}: expected a column name or null, got {_shown(value)}")
            return value.strip()
        whole = annotation.startswith("int")
        allowed = int if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{where}: expected {kind} or null, got {_shown(value)}")
        return value if whole else _as_float(value, where)
    return value


def _as_float(value: int | float, where: str) -> float:
    """``float(value)``; a whole number too large for a float is a config error."""
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(f"{where}: expected a number, got {_shown(value)}, too large "
                          "to hold") from None


def _section(cls: type, raw: Any, name: str, problems: list[str], bad: set[str]) -> Any:
    """One section's settings; each problem found is added to ``problems``.

    A key whose value has the wrong type keeps its default and is added to ``bad``,
    so that the range checks do not judge other keys against a value never given.
    """
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        problems.append(f"section '{name}' must be a mapping")
        bad.update(f"{name}.{f.name}" for f in fields(cls))
        return cls()
    defaults = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(str, unknown))} in section '{name}' "
                        f"(known: {', '.join(sorted(known))})")
    annotations = {f.name: str(f.type) for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            continue
        try:
            values[key] = _coerce(value, getattr(defaults, key), f"{name}.{key}",
                                  annotation=annotations[key])
        except ConfigError as exc:
            problems.append(str(exc))
            bad.add(f"{name}.{key}")
    return cls(**values)


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> Config:
    """Build a :class:`Config` from a parsed mapping, checking every key and value.

    Every problem is gathered into one :class:`ConfigError`, ``"<source>: <problem>;
    <problem>; …"``: unknown keys, values of the wrong type and values out of the
    ranges in :data:`RANGES`.
    """
    known_top = {"name", "seed", "period", "time_limit", *_SECTIONS}
    problems: list[str] = []
    bad: set[str] = set()
    unknown = sorted(set(raw) - known_top, key=str)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(map(str, unknown))} "
                        f"(known: {', '.join(sorted(known_top))})")
    base = Config()
    kwargs: dict[str, Any] = {
        name: _section(cls, raw.get(name), name, problems, bad)
        for name, cls in _SECTIONS.items()
    }
    for key in ("name", "seed", "period", "time_limit"):
        if key in raw:
            try:
                kwargs[key] = _coerce(raw[key], getattr(base, key), key)
            except ConfigError as exc:
                problems.append(str(exc))
                bad.add(key)
    config = Config(**kwargs)
    problems += _check_ranges(config, bad)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return config


def _value(config: Config, key: str) -> Any:
    """The setting at a dotted key, e.g. ``"counting.tolerance"``."""
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _out_of_range(key: str, value: float, bounds: Bounds, *, nullable: bool) -> str | None:
    """The problem with a number, or ``None`` when it lies within its bounds."""
    if value in bounds:
        return None
    null = "null or " if nullable else ""
    kind = "" if _finite(value) else "a finite number "
    note = f" {bounds.note}" if bounds.note else ""
    return f"{key} must be {null}{kind}in {bounds}{note}, got {_shown(value)}"


def _check_ranges(config: Config, bad: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Every value out of its range (see :data:`RANGES`), as one sentence each.

    Keys in ``bad`` (a value of the wrong type, already reported) are not checked.
    """
    problems = []
    for key, bounds in RANGES.items():
        value = _value(config, key)
        if key in bad or value is None:
            continue
        if isinstance(value, dict):
            for kind, share in sorted(value.items()):
                problem = _out_of_range(f"{key}.{kind}", share, bounds, nullable=False)
                if problem:
                    problems.append(problem)
            continue
        problem = _out_of_range(key, value, bounds,
                                nullable=key in ("registration.points", "graph.max_detour"))
        if problem:
            problems.append(problem)
    w, i = config.workload, config.instructor
    if w.basis not in ("workload", "residents"):
        problems.append(f"workload.basis must be 'workload' or 'residents', got {w.basis!r}")
    spans = ("instructor.span_min", "instructor.span_max", "instructor.span_target")
    if not bad.intersection(spans) and all(_value(config, k) in RANGES[k] for k in spans):
        if i.span_min > i.span_max:
            problems.append(f"instructor.span_min..span_max must satisfy min ≤ max, got "
                            f"{i.span_min}..{i.span_max}")
        elif not i.span_min <= i.span_target <= i.span_max:
            problems.append(f"instructor.span_target must lie within span_min..span_max "
                            f"({i.span_min}..{i.span_max}), got {_number(i.span_target)}")
    if "period" not in bad:
        problem = _period_problem(config.period)
        if problem:
            problems.append(problem)
    if config.graph.components not in ("separate", "bridge"):
        problems.append(f"graph.components must be 'separate' or 'bridge', got "
                        f"{config.graph.components!r}")
    if config.graph.contiguity == "queen":
        problems.append("graph.contiguity 'queen' is not offered: districts joined only at a "
                        "corner are not one polygon on the map; use 'rook'")
    elif config.graph.contiguity not in ("tiles", "rook"):
        problems.append(f"graph.contiguity must be 'tiles' or 'rook', got "
                        f"{config.graph.contiguity!r}")
    return problems


def _period_problem(period: str) -> str | None:
    """Why ``period`` is not ``"YYYY-MM-DD/YYYY-MM-DD"`` with start ≤ end, or ``None``."""
    expected = "two dates, start/end, as YYYY-MM-DD/YYYY-MM-DD"
    match = _PERIOD.fullmatch(period)
    if not match:
        return f"period must be {expected}, got {_shown(period)}"
    try:
        start, end = (datetime.date.fromisoformat(part) for part in match.groups())
    except ValueError as exc:
        return f"period must be {expected}, got {_shown(period)}: {exc}"
    if end < start:
        return f"period must not end before it starts, got {_shown(period)}"
    return None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is recorded.

    PyYAML itself keeps the last value in silence. Each duplicate is noted in
    ``duplicates`` with its dotted key and both lines; ``<<`` merge keys may still
    override what they merge.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []
        self._paths: dict[int, str] = {}  # id of a nested mapping node: its dotted key

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        path = self._paths.get(id(node), "")
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            name = f"{path}.{key}" if path else str(key)
            if isinstance(value_node, yaml.MappingNode):
                self._paths.setdefault(id(value_node), name)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is None:
                seen[key] = line
            else:
                self.duplicates.append(
                    f"duplicate key '{name}' at line {line} (first given at line {first})")
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts
            raise yaml.constructor.ConstructorError(
                None, None, f"the whole number {_shown(str(node.value))} has too many digits",
                node.start_mark) from None


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def _parse_yaml(text: str, path: Path) -> Any:
    """The YAML document in ``text``; a syntax error or a duplicate key is a config error."""
    loader = _UniqueKeyLoader(text)
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as exc:  # one line: the position and the parser's reason
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{path}: not valid YAML{where}: {reason}") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(f"{path}: " + "; ".join(loader.duplicates))
    return raw


def load_config(path: str | Path | None) -> Config:
    """Read a YAML configuration file; ``None`` gives the defaults.

    The file must be UTF-8 text and valid YAML with no key given twice in one
    mapping; every problem with its values is reported in one :class:`ConfigError`.
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text at byte {exc.start} (line {line}); "
                          "save it as UTF-8") from None
    raw = _parse_yaml(text, path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return config_from_dict(raw, source=str(path))
