"""Tests of the YAML configuration: defaults, the demo norms and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from districting.cli import main
from districting.config import Config, config_from_dict, load_config
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
        ({"time_limit": -1}, "time_limit must be > 0"),
        ({"workload": {"online_share_by_type": {"village": 1.2}}},
         "workload.online_share_by_type.village must be in [0, 1)"),
        ({"instructor": {"tolerance": 0}}, "instructor.tolerance must be in (0, 1)"),
        ({"registration": {"capacity_share": 0.5}}, "registration.capacity_share must be ≥ 1"),
        ({"staffing": {"reserve_share": 1.0}}, "staffing.reserve_share must be in [0, 1)"),
        ({"staffing": {"point_days": -3}}, "staffing.point_days must be ≥ 0"),
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
    ],
)
def test_cli_plan_bad_config(
    register_file: Path, tmp_path: Path, text: str | None, phrase: str
) -> None:
    path = tmp_path / "bad.yaml" if text is None else _write(tmp_path, text, "bad.yaml")
    out = tmp_path / "plan"
    result = CliRunner().invoke(
        main, ["-q", "plan", str(register_file), "--config", str(path), "--out", str(out)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert phrase in lines[0]
    assert "bad.yaml" in lines[0]
    assert not out.exists()
