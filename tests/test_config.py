"""Tests of the YAML configuration: defaults, the demo norms and every kind of bad input."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from districting.cli import main
from districting.config import (
    _SECTIONS,
    RANGES,
    Config,
    _check_ranges,
    config_from_dict,
    load_config,
)
from districting.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write(tmp_path: Path, text: str, name: str = "norms.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_yaml_equals_built_in_defaults() -> None:
    config = load_config(CONFIGS / "default.yaml")
    assert config == Config()
    assert load_config(None) == Config()


def test_default_values() -> None:
    config = Config()
    assert config.counting.capacity_minutes == 30 * 4.0 * 60
    assert config.registration.points is None
    assert config.registration.functions == (
        "public_service_centre", "akimat", "school", "post_office")


def test_baikonur_config_loads() -> None:
    config = load_config(CONFIGS / "baikonur-2021.yaml")
    assert config.name == "baikonur-2021"
    assert config.seed == 2021
    assert config.counting.tolerance == pytest.approx(0.30)
    assert config.counting.hours_per_day == pytest.approx(2.5)
    assert config.workload.online_share == pytest.approx(0.20)
    assert isinstance(config.workload.interview_minutes, float)
    assert config.registration.residents_per_point == pytest.approx(12000)
    assert config.graph.settlement_margin_m == Config().graph.settlement_margin_m  # omitted key


def test_partial_config_keeps_other_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "counting:\n  tolerance: 0.2\nseed: 7\n"))
    assert config.counting.tolerance == pytest.approx(0.2)
    assert config.seed == 7
    assert config.counting.working_days == Config().counting.working_days
    assert config.workload == Config().workload


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "# nothing set\n")) == Config()


def test_points_may_be_set_or_null() -> None:
    assert config_from_dict({"registration": {"points": 3}}).registration.points == 3
    assert config_from_dict({"registration": {"points": None}}).registration.points is None


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed: 1\ncolour: red\n")
    with pytest.raises(ConfigError, match="unknown key") as info:
        load_config(path)
    assert "colour" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_section_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "counting:\n  tolerence: 0.1\n")
    with pytest.raises(ConfigError, match="tolerence") as info:
        load_config(path)
    message = str(info.value)
    assert "section 'counting'" in message
    assert "tolerance" in message  # the known keys are listed
    assert str(path) in message


@pytest.mark.parametrize(
    ("text", "key", "phrase"),
    [
        ("seed: abc\n", "seed", "expected a whole number"),
        ("seed: 1.5\n", "seed", "expected a whole number"),
        ("seed: true\n", "seed", "expected a whole number"),
        ("name: 5\n", "name", "expected text"),
        ("time_limit: fast\n", "time_limit", "expected a number"),
        ("counting:\n  tolerance: yes\n", "counting.tolerance", "expected a number"),
        ("counting:\n  working_days: 30.5\n", "counting.working_days", "expected a whole number"),
        ("registration:\n  functions: school\n", "registration.functions",
         "expected a list of names"),
        ("registration:\n  points: 2.5\n", "registration.points", "whole number or null"),
        ("workload:\n  online_share_by_type: 0.3\n", "workload.online_share_by_type",
         "expected a mapping of names to numbers"),
        ("workload:\n  online_share_by_type:\n    city: high\n",
         "workload.online_share_by_type", "expected a mapping of names to numbers"),
        ("workload:\n  online_share_column: 7\n", "workload.online_share_column",
         "expected a column name or null"),
        ("staffing:\n  staff_per_point: 1.5\n", "staffing.staff_per_point",
         "expected a whole number"),
        ("instructor:\n  tolerance: wide\n", "instructor.tolerance", "expected a number"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, key: str, phrase: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=phrase) as info:
        load_config(path)
    assert f"{path}: {key}:" in str(info.value)


def test_section_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "counting: 5\n")
    with pytest.raises(ConfigError, match="section 'counting' must be a mapping") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "- seed\n- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("tolerance", [0, 1.0, 1.5, -0.1])
def test_tolerance_out_of_range(tmp_path: Path, tolerance: float) -> None:
    path = _write(tmp_path, f"counting:\n  tolerance: {tolerance}\n")
    with pytest.raises(ConfigError, match=r"counting\.tolerance must be in \(0, 1\)") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"workload": {"basis": "dwellings"}}, "workload.basis"),
        ({"workload": {"online_share": 1.0}}, "workload.online_share"),
        ({"counting": {"working_days": 0}}, "counting.working_days"),
        ({"instructor": {"span_min": 9, "span_max": 8}}, "instructor.span_min..span_max"),
        ({"registration": {"residents_per_point": 0}}, "registration.residents_per_point"),
        ({"time_limit": -1}, "time_limit must be in (0, 86400] seconds, got -1.0"),
        ({"workload": {"online_share_by_type": {"village": 1.2}}},
         "workload.online_share_by_type.village must be in [0, 1)"),
        ({"instructor": {"tolerance": 0}}, "instructor.tolerance must be in (0, 1)"),
        ({"registration": {"capacity_share": 0.5}}, "registration.capacity_share must be in [1, "),
        ({"staffing": {"reserve_share": 1.0}}, "staffing.reserve_share must be in [0, 1)"),
        ({"staffing": {"point_days": -3}}, "staffing.point_days must be in [0, 366] days, got -3"),
    ],
)
def test_other_ranges(raw: dict[str, object], phrase: str) -> None:
    with pytest.raises(ConfigError, match=r"^mine: ") as info:
        config_from_dict(raw, source="mine")
    assert phrase in str(info.value)


def test_several_range_problems_in_one_message() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"counting": {"tolerance": 2.0}, "time_limit": 0})
    assert "counting.tolerance" in str(info.value)
    assert "time_limit" in str(info.value)


# ---------------------------------------------------------------- every number finite, in range


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("workload:\n  interview_minutes: .nan\n", "workload.interview_minutes"),
        ("workload:\n  walking_speed_kmh: .NaN\n", "workload.walking_speed_kmh"),
        ("workload:\n  online_share_by_type:\n    city: .nan\n",
         "workload.online_share_by_type.city"),
        ("counting:\n  hours_per_day: .nan\n", "counting.hours_per_day"),
        ("instructor:\n  span_target: .nan\n", "instructor.span_target"),
        ("registration:\n  time_limit: .nan\n", "registration.time_limit"),
        ("graph:\n  max_detour: .nan\n", "graph.max_detour"),
        ("time_limit: .nan\n", "time_limit"),
    ],
)
def test_nan_is_refused(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key} must be ")
    assert "a finite number in " in message
    assert message.endswith("got nan")


@pytest.mark.parametrize(
    ("text", "key", "shown"),
    [
        ("workload:\n  interview_minutes: .inf\n", "workload.interview_minutes", "inf"),
        ("workload:\n  minutes_per_building: .inf\n", "workload.minutes_per_building", "inf"),
        ("counting:\n  hours_per_day: .inf\n", "counting.hours_per_day", "inf"),
        ("counting:\n  target_residents: -.inf\n", "counting.target_residents", "-inf"),
        ("graph:\n  settlement_margin_m: .Inf\n", "graph.settlement_margin_m", "inf"),
        ("graph:\n  detour_slack_m: -.inf\n", "graph.detour_slack_m", "-inf"),
        ("time_limit: .inf\n", "time_limit", "inf"),
        ("registration:\n  residents_per_point: 1.0e+400\n",
         "registration.residents_per_point", "inf"),
    ],
)
def test_infinity_is_refused(tmp_path: Path, text: str, key: str, shown: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key} must be a finite number in ")
    assert message.endswith(f"got {shown}")


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"counting": {"target_utilization": 0.001}},
         "counting.target_utilization must be in [0.5, 1.5] (a share of one interviewer's "
         "capacity), got 0.001"),
        ({"counting": {"target_utilization": 2}}, "counting.target_utilization must be in"),
        ({"counting": {"hours_per_day": 25}}, "counting.hours_per_day must be in (0, 24] hours"),
        ({"counting": {"working_days": 400}}, "counting.working_days must be in [1, 366] days"),
        ({"counting": {"target_residents": 0}}, "counting.target_residents must be in [1, "),
        ({"workload": {"interview_minutes": 1000}},
         "workload.interview_minutes must be in (0, 240] minutes, got 1000"),
        ({"workload": {"interview_minutes": 0}}, "workload.interview_minutes must be in (0, "),
        ({"workload": {"walking_speed_kmh": 0.001}}, "workload.walking_speed_kmh must be in"),
        ({"workload": {"household_size": 0.5}}, "workload.household_size must be in [1, 20]"),
        ({"workload": {"callback_share": -0.1}}, "workload.callback_share must be in [0, 5]"),
        ({"workload": {"minutes_per_building": -1}},
         "workload.minutes_per_building must be in [0, 240]"),
        ({"instructor": {"span_target": 0}}, "instructor.span_target must be in [1, 100] CDs"),
        ({"instructor": {"span_target": -6.5}}, "instructor.span_target must be in [1, 100]"),
        ({"instructor": {"span_target": 9}},
         "instructor.span_target must lie within span_min..span_max (5..8), got 9"),
        ({"instructor": {"span_min": 0}}, "instructor.span_min must be in [1, 100] CDs, got 0"),
        ({"instructor": {"span_max": 500}}, "instructor.span_max must be in [1, 100]"),
        ({"graph": {"settlement_margin_m": -5}},
         "graph.settlement_margin_m must be in (0, 10000] metres, got -5.0"),
        ({"graph": {"crossing_radius_m": -1}},
         "graph.crossing_radius_m must be in [0, 10000] metres, got -1.0"),
        ({"graph": {"detour_slack_m": -150}}, "graph.detour_slack_m must be in [0, 10000]"),
        ({"graph": {"max_detour": 0.5}},
         "graph.max_detour must be null or in [1, 100] (a ratio to the straight line)"),
        ({"registration": {"residents_per_point": 10}},
         "registration.residents_per_point must be in [100, 1000000] residents, got 10"),
        ({"registration": {"points": 0}}, "registration.points must be null or in [1, 10000]"),
        ({"registration": {"time_limit": 0}}, "registration.time_limit must be in (0, 86400]"),
        ({"staffing": {"staff_per_point": -2}}, "staffing.staff_per_point must be in [0, 100]"),
        ({"staffing": {"instructor_days": 1000}}, "staffing.instructor_days must be in [0, 366]"),
        ({"seed": -1}, "seed must be in [0, 4294967295], got -1"),
        ({"seed": 2**40}, "seed must be in [0, 4294967295]"),
        ({"time_limit": 10**6}, "time_limit must be in (0, 86400] seconds"),
    ],
)
def test_out_of_range(raw: dict[str, object], phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="mine")
    assert str(info.value).startswith(f"mine: {phrase}")
    assert ";" not in str(info.value)  # one problem, said once


def test_range_ends_are_accepted() -> None:
    config = config_from_dict({
        "seed": 0,
        "counting": {"working_days": 366, "hours_per_day": 24, "target_utilization": 0.5},
        "instructor": {"span_min": 5, "span_max": 8, "span_target": 5},
        "graph": {"crossing_radius_m": 0, "detour_slack_m": 0, "max_detour": 1},
        "staffing": {"staff_per_point": 0, "point_days": 0},
        "period": "2021-10-01/2021-10-01",
    })
    assert config.counting.hours_per_day == 24
    assert config.instructor.span_target == 5
    assert config_from_dict({"counting": {"target_utilization": 1.5}}).counting.target_utilization \
        == pytest.approx(1.5)
    assert config_from_dict({"instructor": {"span_target": 8}}).instructor.span_target == 8


def test_every_range_is_stated_and_holds_for_the_defaults() -> None:
    """Each number of the config has one range, and the defaults lie inside them."""
    numbers = {"seed", "time_limit"} | {
        f"{name}.{f.name}" for name, cls in _SECTIONS.items() for f in fields(cls)
        if isinstance(getattr(cls(), f.name), int | float | dict) or f.name in ("points",
                                                                                 "max_detour")
    }
    assert numbers == set(RANGES)
    assert _check_ranges(Config()) == []


def test_huge_whole_number_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "workload:\n  interview_minutes: " + "9" * 400 + "\n")
    with pytest.raises(ConfigError, match="workload.interview_minutes: expected a number, got "
                                          r"9+… \(400 characters\), too large to hold"):
        load_config(path)
    path = _write(tmp_path, "seed: " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 1, column 7: the whole "
                                          r"number .* has too many digits"):
        load_config(path)


# ---------------------------------------------------------------- period


@pytest.mark.parametrize(
    ("period", "phrase"),
    [
        ("2021-10-30/2021-10-01", "period must not end before it starts, got "
                                  "'2021-10-30/2021-10-01'"),
        ("2021-10-01", "period must be two dates, start/end, as YYYY-MM-DD/YYYY-MM-DD, got "
                       "'2021-10-01'"),
        ("October 2021", "period must be two dates"),
        ("2021-10-01/2021-10-30/2021-11-30", "period must be two dates"),
        ("", "period must be two dates"),
        ("2021-10-01/2021-10-32", "period must be two dates, start/end, as "
                                  "YYYY-MM-DD/YYYY-MM-DD, got '2021-10-01/2021-10-32': day is "
                                  "out of range for month"),
        ("2021-13-01/2021-13-30", "period must be two dates"),
        ("20211001/20211030", "period must be two dates"),
    ],
)
def test_bad_period(tmp_path: Path, period: str, phrase: str) -> None:
    path = _write(tmp_path, f"period: '{period}'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {phrase}")
    assert ";" not in str(info.value)  # one problem, said once


def test_period_may_be_spaced_or_one_day() -> None:
    assert config_from_dict({"period": "2021-10-01 / 2021-10-30"}).period \
        == "2021-10-01 / 2021-10-30"
    assert config_from_dict({"period": "2021-10-01/2021-10-01"}).period == "2021-10-01/2021-10-01"


# ---------------------------------------------------------------- the file itself


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seed: 1\nname: a\nseed: 2\n",
         "duplicate key 'seed' at line 3 (first given at line 1)"),
        ("counting:\n  tolerance: 0.2\n  hours_per_day: 3\n  tolerance: 0.3\n",
         "duplicate key 'counting.tolerance' at line 4 (first given at line 2)"),
        ("workload:\n  online_share_by_type:\n    city: 0.2\n    village: 0.1\n    city: 0.3\n",
         "duplicate key 'workload.online_share_by_type.city' at line 5 (first given at line 3)"),
        ("graph: {components: separate, components: bridge}\n",
         "duplicate key 'graph.components' at line 1 (first given at line 1)"),
        ("counting:\n  tolerance: 0.2\nseed: 1\ncounting:\n  tolerance: 0.3\n",
         "duplicate key 'counting' at line 4 (first given at line 1)"),
    ],
)
def test_duplicate_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {expected}"


def test_every_duplicate_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed: 1\nseed: 2\ngraph:\n  contiguity: tiles\n  contiguity: rook\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: duplicate key 'seed' at line 2 (first given at line 1); "
        "duplicate key 'graph.contiguity' at line 5 (first given at line 4)")


def test_same_key_in_different_sections_and_merge_keys_are_fine(tmp_path: Path) -> None:
    text = "time_limit: 30\nregistration:\n  time_limit: 10\n"
    config = load_config(_write(tmp_path, text))
    assert config.time_limit == 30
    assert config.registration.time_limit == 10
    # a key given beside a << merge overrides the merged one, as YAML means it to
    text = "instructor:\n  <<: {span_min: 4, span_max: 9, span_target: 6}\n  span_max: 7\n"
    config = load_config(_write(tmp_path, text, "merge.yaml"))
    assert (config.instructor.span_min, config.instructor.span_max) == (4, 7)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "norms.yaml"
    path.write_bytes("name: нормы\nseed: 1\n".encode("cp1251"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: not UTF-8 text at byte 6 (line 1); save it as UTF-8"
    path.write_bytes(b"seed: 1\n# \xcf\xf0\xe8\xec\xe5\xf0\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text at byte 10 \(line 2\); save it as "
                                          "UTF-8$"):
        load_config(path)


def test_utf8_with_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "norms.yaml"
    path.write_bytes("name: нормы\nseed: 3\n".encode("utf-8-sig"))
    config = load_config(path)
    assert (config.name, config.seed) == ("нормы", 3)


# ---------------------------------------------------------------- all problems at once


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    path = _write(tmp_path, (
        "seed: -4\n"
        "period: 2021-10-30/2021-10-01\n"
        "colour: red\n"
        "workload:\n"
        "  interview_minutes: .nan\n"
        "  walking_speed_kmh: fast\n"
        "counting:\n"
        "  hours_per_day: .inf\n"
        "  target_utilization: 0.001\n"
        "instructor:\n"
        "  span_target: 0\n"
        "graph:\n"
        "  settlement_margin_m: -10\n"
        "  crossing_radius_m: -1\n"
    ))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    problems = message.removeprefix(f"{path}: ").split("; ")
    assert problems == [
        "unknown key(s) colour (known: counting, graph, instructor, name, period, registration, "
        "seed, staffing, time_limit, workload)",
        "workload.walking_speed_kmh: expected a number, got 'fast'",
        "seed must be in [0, 4294967295], got -4",
        "workload.interview_minutes must be a finite number in (0, 240] minutes, got nan",
        "counting.hours_per_day must be a finite number in (0, 24] hours, got inf",
        "counting.target_utilization must be in [0.5, 1.5] (a share of one interviewer's "
        "capacity), got 0.001",
        "instructor.span_target must be in [1, 100] CDs, got 0.0",
        "graph.settlement_margin_m must be in (0, 10000] metres, got -10.0",
        "graph.crossing_radius_m must be in [0, 10000] metres, got -1.0",
        "period must not end before it starts, got '2021-10-30/2021-10-01'",
    ]


def test_bad_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "counting:\n  tolerance: [0.1\nseed: 2\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "line " in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read config") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        config_from_dict({"seed": "x"})


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("colour: red\n", "unknown key(s) colour"),
        ("counting:\n  tolerance: 1.5\n", "counting.tolerance must be in (0, 1)"),
        ("seed: [1\nname: x\n", "not valid YAML"),
        (None, "cannot read config"),
        ("workload:\n  interview_minutes: .nan\n",
         "workload.interview_minutes must be a finite number in (0, 240] minutes, got nan"),
        ("counting:\n  target_utilization: 0.001\n",
         "counting.target_utilization must be in [0.5, 1.5]"),
        ("seed: 1\ncounting:\n  tolerance: 0.2\n  tolerance: 0.3\n",
         "duplicate key 'counting.tolerance' at line 4 (first given at line 3)"),
        ("period: 2021-10-30/2021-10-01\n", "period must not end before it starts"),
        ("# Нормы\nseed: 1\n".encode("cp1251"), "not UTF-8 text at byte 2 (line 1)"),
    ],
)
def test_cli_plan_bad_config(
    register_file: Path, tmp_path: Path, text: str | bytes | None, phrase: str
) -> None:
    path = tmp_path / "bad.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        _write(tmp_path, text, "bad.yaml")
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        main, ["-q", "plan", str(register_file), "--config", str(path), "--out", str(out)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert phrase in lines[0]
    assert "bad.yaml" in lines[0]
    assert not out.exists()
