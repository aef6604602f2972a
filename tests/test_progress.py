"""Tests for Stage-2 progress monitoring (districting.fieldops.progress)."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from plan_fixtures import SETTLEMENT, grid_plan, write_plan

from districting.errors import DistrictingError, InputFileError
from districting.fieldops.progress import (
    CSV_COLUMNS,
    OUTPUT_FILES,
    progress,
    read_progress_records,
    run_progress,
    write_progress,
)
from districting.layers import PlanLayers

SECOND = "431030100"
AS_OF = date(2021, 10, 20)
#: The grid's CD 1 (ID 01): 6 tiles with 12 households and 26 residents.
CD1 = f"{SETTLEMENT}-01-001"
CD2 = f"{SETTLEMENT}-01-002"
CD3 = f"{SETTLEMENT}-02-003"
CD4 = f"{SETTLEMENT}-02-004"


def _second_grid() -> dict[str, gpd.GeoDataFrame]:
    """The grid plan again, 2 km east, as a second settlement with its own codes."""
    layers = grid_plan()
    out = {}
    for name, frame in layers.items():
        frame = frame.copy()
        for column in ("cd_code", "id_code", "rd_code", "settlement_id"):
            if column in frame.columns:
                frame[column] = frame[column].str.replace(SETTLEMENT, SECOND, regex=False)
        for column in ("building_id", "point_building_id", "unit_id", "u", "v"):
            if column in frame.columns:
                frame[column] = "S" + frame[column].astype(str)
        if "settlement_name" in frame.columns:
            frame["settlement_name"] = "Торетам (test)"
        frame = frame.set_geometry(shapely.transform(frame.geometry.to_numpy(),
                                                     lambda xy: xy + np.array([2000.0, 0.0])))
        out[name] = frame
    return out


def _two_settlements() -> PlanLayers:
    first, second = grid_plan(), _second_grid()
    return PlanLayers(**{
        name: gpd.GeoDataFrame(pd.concat([first[name], second[name]], ignore_index=True),
                               geometry="geometry", crs=first[name].crs)
        for name in first
    })


def _units(layers: PlanLayers, cd: str) -> pd.DataFrame:
    return layers.units.loc[layers.units["cd_code"] == cd].sort_values("unit_id")


class Records:
    """Builds hand-made records: one call per household."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.households = 0

    def household(self, building: str, *, day: str, channel: str = "tablet",
                  status: str = "completed", persons: int = 2, time: str = "12:00:00",
                  household: str | None = None, dwelling: str = "") -> str:
        """Add one household's records; returns its household_id."""
        if household is None:
            self.households += 1
            household = f"hh-{self.households:05d}"
        with_people = channel != "tablet" or status == "completed"
        for person in range(persons if with_people else 1):
            n = len(self.rows) + 1
            self.rows.append({
                "record_id": f"rec-{n:06d}",
                "building_id": building,
                "household_id": household,
                "dwelling": dwelling,
                "persons": str(persons) if with_people else "",
                "channel": channel,
                "submitted_at": f"{day}T{time}+06:00",
                "status": "" if channel != "tablet" else status,
                # A distinctive fake hash per person, to prove none is ever written out.
                "iin_hash": f"{n:04d}deadbeef{person:02d}" + "a" * 50 if with_people else "",
            })
        return household

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _row(frame: pd.DataFrame, column: str, code: str) -> pd.Series:
    rows = frame.loc[frame[column] == code]
    assert len(rows) == 1, code
    return rows.iloc[0]


@pytest.fixture
def layers() -> PlanLayers:
    return _two_settlements()


@pytest.fixture
def mixed(layers: PlanLayers) -> pd.DataFrame:
    """Records of every kind spread over both settlements, some after AS_OF."""
    rec = Records()
    for i, unit in enumerate(layers.units.sort_values("unit_id").itertuples()):
        households = int(unit.households)
        for h in range(households):
            kind = (i + h) % 7
            day = f"2021-10-{1 + (i * 3 + h) % 25:02d}"
            if kind == 0:
                rec.household(unit.building_id, day="2021-09-10", channel="web",
                              persons=1 + h % 3)
            elif kind in (1, 2):
                rec.household(unit.building_id, day=day, persons=1 + (i + h) % 4)
            elif kind == 3:
                rec.household(unit.building_id, day=day, status="vacant")
            elif kind == 4:
                rec.household(unit.building_id, day=day, status=("refused", "absent")[h % 2])
            elif kind == 5:
                rec.household(unit.building_id, day=day, channel="egov", persons=2)
            # kind 6: not yet visited
    return rec.frame()


# ---------------------------------------------------------------- counting


def test_counts_of_one_cd_by_hand(layers: PlanLayers) -> None:
    units = _units(layers, CD1)
    b = units["building_id"].tolist()
    rec = Records()
    rec.household(b[0], day="2021-09-05", channel="web", persons=2)  # online: done
    rec.household(b[1], day="2021-10-03", persons=3)  # completed visit: done
    rec.household(b[2], day="2021-10-04", status="vacant")  # vacant: done, no person
    rec.household(b[3], day="2021-10-05", status="refused")  # attempted only
    rec.household(b[4], day="2021-10-06", status="absent")  # attempted only
    again = rec.household(b[5], day="2021-10-02", status="absent")
    rec.household(b[5], day="2021-10-07", persons=1, household=again)  # absent, then done
    result = progress(layers, rec.frame(), as_of=AS_OF)
    cd = _row(result.cds, "cd_code", CD1)
    assert cd["expected_persons"] == units["residents"].sum() == 26
    assert cd["expected_households"] == units["households"].sum() == 12
    assert cd["counted_persons"] == 6
    assert cd["coverage"] == pytest.approx(6 / 26)
    assert cd["done_households"] == 4
    assert (cd["done_online"], cd["done_visit"], cd["done_vacant"]) == (1, 2, 1)
    assert cd["attempted_households"] == 2
    assert cd["completion"] == pytest.approx(4 / 12)
    assert cd["done_in_period"] == 3  # the online answer of 5 September is a head start
    assert cd["daily_pace"] == pytest.approx(3 / 20)
    others = result.cds.loc[result.cds["cd_code"] != CD1]
    assert (others["counted_persons"] == 0).all() and (others["done_households"] == 0).all()
    assert result.summary["records"]["given"] == len(rec.rows)
    assert result.summary["totals"]["done_households"] == 4


def test_sums_nest_and_match_units(layers: PlanLayers, mixed: pd.DataFrame) -> None:
    result = progress(layers, mixed, as_of=AS_OF)
    units = layers.units
    expected = units.groupby("cd_code")[["residents", "households"]].sum()
    cds = result.cds.set_index("cd_code")
    assert list(cds.index) == sorted(expected.index)
    assert (cds["expected_persons"] == expected["residents"]).all()
    assert (cds["expected_households"] == expected["households"]).all()
    # Independent count per CD from the records themselves.
    used = mixed.loc[pd.to_datetime(mixed["submitted_at"].str[:10]) <= pd.Timestamp(AS_OF)]
    cd_of = units.set_index("building_id")["cd_code"]
    persons = used.loc[used["iin_hash"] != ""].groupby(used["building_id"].map(cd_of)).size()
    assert (cds["counted_persons"] == persons.reindex(cds.index, fill_value=0)).all()
    done = used.loc[(used["channel"] != "tablet")
                    | used["status"].isin(["completed", "vacant"])]
    households = done.groupby(done["building_id"].map(cd_of))["household_id"].nunique()
    assert (cds["done_households"] == households.reindex(cds.index, fill_value=0)).all()
    assert (cds["coverage"] == cds["counted_persons"] / cds["expected_persons"]).all()
    assert (cds["completion"] == cds["done_households"] / cds["expected_households"]).all()
    assert cds["done_households"].sum() > 0 and cds["attempted_households"].sum() > 0
    counts = ["expected_persons", "counted_persons", "expected_households", "done_households",
              "done_online", "done_visit", "done_vacant", "attempted_households",
              "done_in_period"]
    by_id = result.cds.groupby("id_code")[counts].sum()
    ids = result.ids.set_index("id_code")
    pd.testing.assert_frame_equal(ids[counts], by_id, check_names=False)
    for parent, frame in (("settlement_id", result.cds), ("settlement_id", result.ids)):
        sums = frame.groupby(parent)[counts].sum()
        pd.testing.assert_frame_equal(result.settlements.set_index("settlement_id")[counts],
                                      sums, check_names=False)
    assert set(result.settlements["settlement_id"]) == {SETTLEMENT, SECOND}
    assert result.settlements["n_cd"].tolist() == [4, 4]
    assert result.settlements["n_id"].tolist() == [2, 2]
    totals = result.summary["totals"]
    for column in counts:
        assert totals[column] == int(result.cds[column].sum())


def test_as_of_counts_to_the_end_of_the_day(layers: PlanLayers) -> None:
    b = _units(layers, CD1)["building_id"].tolist()
    rec = Records()
    rec.household(b[0], day="2021-10-20", time="23:59:59", persons=2)
    rec.household(b[1], day="2021-10-21", time="00:00:01", persons=3)
    rec.household(b[2], day="2021-10-21", time="09:00:00", status="vacant")
    frame = rec.frame()
    cd = _row(progress(layers, frame, as_of=AS_OF).cds, "cd_code", CD1)
    assert (cd["counted_persons"], cd["done_households"]) == (2, 1)
    result = progress(layers, frame, as_of=date(2021, 10, 21))
    cd = _row(result.cds, "cd_code", CD1)
    assert (cd["counted_persons"], cd["done_households"]) == (5, 3)
    early = progress(layers, frame, as_of=date(2021, 10, 19))
    assert early.summary["records"]["after_as_of"] == len(frame)
    assert early.summary["totals"]["counted_persons"] == 0


def test_times_as_datetimes_and_without_offset(layers: PlanLayers) -> None:
    b = _units(layers, CD1)["building_id"].tolist()
    rec = Records()
    rec.household(b[0], day="2021-10-20", persons=2)
    rec.household(b[1], day="2021-10-21", persons=3)
    text = rec.frame()
    naive = text.assign(submitted_at=text["submitted_at"].str[:19])
    aware = text.assign(submitted_at=pd.to_datetime(text["submitted_at"]))
    for frame in (text, naive, aware):
        cd = _row(progress(layers, frame, as_of=AS_OF).cds, "cd_code", CD1)
        assert cd["counted_persons"] == 2


def test_unknown_building_and_unreadable_time_are_left_out(
        layers: PlanLayers, caplog: pytest.LogCaptureFixture) -> None:
    b = _units(layers, CD1)["building_id"].tolist()
    rec = Records()
    rec.household(b[0], day="2021-10-05", persons=2)
    rec.household("NOWHERE", day="2021-10-05", persons=3)
    frame = rec.frame()
    frame.loc[len(frame)] = {**rec.rows[0], "record_id": "X1", "submitted_at": "yesterday"}
    with caplog.at_level(logging.INFO):
        result = progress(layers, frame, as_of=AS_OF)
    assert result.summary["records"]["unknown_building"] == 3
    assert result.summary["records"]["unreadable_time"] == 1
    assert result.summary["totals"]["counted_persons"] == 2
    assert "not in the plan" in caplog.text


def test_split_building_goes_by_dwelling(layers: PlanLayers) -> None:
    units = layers.units.copy()
    # Two units of one building: dwellings 1-4 in CD1, 5-9 in CD2.
    first = units.index[units["unit_id"] == _units(layers, CD1)["unit_id"].iloc[0]][0]
    second = units.index[units["unit_id"] == _units(layers, CD2)["unit_id"].iloc[0]][0]
    units.loc[second, "building_id"] = units.loc[first, "building_id"]
    units.loc[first, ["dwelling_from", "dwelling_to"]] = [1, 4]
    units.loc[second, ["dwelling_from", "dwelling_to"]] = [5, 9]
    split = PlanLayers(**{**layers.as_dict(), "units": units})
    building = units.loc[first, "building_id"]
    rec = Records()
    rec.household(building, day="2021-10-05", persons=2, dwelling="7")  # CD2
    rec.household(building, day="2021-10-05", persons=3, dwelling="2")  # CD1
    rec.household(building, day="2021-10-05", persons=4)  # no dwelling: the first unit
    rec.household(building, day="2021-10-05", persons=1, dwelling="99")  # outside: first
    result = progress(split, rec.frame(), as_of=AS_OF)
    assert _row(result.cds, "cd_code", CD1)["counted_persons"] == 8
    assert _row(result.cds, "cd_code", CD2)["counted_persons"] == 2
    assert _row(result.cds, "cd_code", CD1)["done_households"] == 3
    assert _row(result.cds, "cd_code", CD2)["done_households"] == 1


# ---------------------------------------------------------------- pace and flags


def _paced(layers: PlanLayers, done_by_cd: dict[str, int], *, last_day: int = 20,
           head_start: dict[str, int] | None = None) -> pd.DataFrame:
    """``done_by_cd[cd]`` households visited in the first ``last_day`` days of October,
    after ``head_start[cd]`` households answered online in September."""
    rec = Records()
    for cd, count in done_by_cd.items():
        buildings = [b for _, u in _units(layers, cd).iterrows()
                     for b in [u["building_id"]] * int(u["households"])]
        online = (head_start or {}).get(cd, 0)
        for k, building in enumerate(buildings[:online]):
            rec.household(building, day=f"2021-09-{1 + k:02d}", channel="aitu", persons=1)
        for k, building in enumerate(buildings[online:online + count]):
            rec.household(building, day=f"2021-10-{1 + k % last_day:02d}", persons=2)
    return rec.frame()


def test_lagging_projection(layers: PlanLayers) -> None:
    # 12 households per CD. CD1: half done in 20 of 30 days -> 75 %, 3 households short.
    # CD2: 8 in 20 days -> exactly 12 by 30 October: on pace. CD3: 6 online in September
    # plus 2 visits -> 8 + 0.1 x 10 = 9 -> 75 %, lagging. CD4: all 12 done: complete.
    frame = _paced(layers, {CD1: 6, CD2: 8, CD3: 2, CD4: 12}, head_start={CD3: 6})
    result = progress(layers, frame, as_of=AS_OF)
    cds = result.cds.set_index("cd_code")
    assert cds.at[CD1, "completion"] == pytest.approx(0.5)
    assert cds.at[CD1, "daily_pace"] == pytest.approx(6 / 20)
    assert cds.at[CD1, "projected_completion"] == pytest.approx(0.75)
    assert cds.at[CD1, "status"] == "lagging" and cds.at[CD1, "lagging"]
    assert cds.at[CD1, "households_short"] == 3
    assert cds.at[CD1, "required_pace"] == pytest.approx(6 / 10)
    assert cds.at[CD2, "projected_completion"] == pytest.approx(1.0)
    assert cds.at[CD2, "status"] == "on_pace" and not cds.at[CD2, "lagging"]
    assert cds.at[CD2, "households_short"] == 0
    assert cds.at[CD3, "done_in_period"] == 2 and cds.at[CD3, "done_households"] == 8
    assert cds.at[CD3, "projected_completion"] == pytest.approx(0.75)
    assert cds.at[CD3, "households_short"] == 3
    assert cds.at[CD4, "status"] == "complete"
    assert cds.at[CD4, "projected_completion"] == pytest.approx(1.0)
    # The second settlement has no records at all: lagging at 0 %, 12 households short each.
    second = result.cds.loc[result.cds["settlement_id"] == SECOND]
    assert second["lagging"].all() and (second["households_short"] == 12).all()
    ids = result.ids.set_index("id_code")
    first_id = f"{SETTLEMENT}-01"
    assert ids.at[first_id, "n_cd_lagging"] == 1
    # ID 01: 14 of 24 done, 14 in the period -> 14 + 0.7 x 10 = 21 -> 87.5 %, 3 short.
    assert ids.at[first_id, "projected_completion"] == pytest.approx(21 / 24)
    assert ids.at[first_id, "households_short"] == 3
    assert result.summary["counting_districts"]["lagging"] == 6
    assert result.summary["lagging_cds"][0] == CD1
    assert result.summary["phase"] == "running"
    assert result.summary["field_days"] == {"total": 30, "elapsed": 20, "remaining": 10}


def test_lagging_reasons_in_csv(layers: PlanLayers, tmp_path: Path) -> None:
    frame = _paced(layers, {CD1: 6, CD2: 8})
    result = progress(layers, frame, as_of=AS_OF)
    write_progress(result, tmp_path / "ru", title="t")
    write_progress(result, tmp_path / "en", title="t", lang="en")
    ru = pd.read_csv(tmp_path / "ru" / "cd_progress.csv", dtype=str, keep_default_na=False)
    en = pd.read_csv(tmp_path / "en" / "cd_progress.csv", dtype=str, keep_default_na=False)
    assert tuple(ru.columns) == CSV_COLUMNS["cds"]
    assert _row(en, "cd_code", CD1)["lagging_reason"] == (
        "lagging: projected 75.0% by 2021-10-30, 3 households short")
    assert "75,0\u00a0%" in _row(ru, "cd_code", CD1)["lagging_reason"]
    assert "30.10.2021" in _row(ru, "cd_code", CD1)["lagging_reason"]
    assert _row(en, "cd_code", CD1)["lagging"] == "true"
    assert _row(en, "cd_code", CD1)["households_short"] == "3"
    assert _row(en, "cd_code", CD1)["projected_completion"] == "0.7500"
    assert _row(en, "cd_code", CD2)["lagging"] == "false"
    assert _row(en, "cd_code", CD2)["lagging_reason"] == ""


def test_after_the_period_lagging_is_what_is_left(layers: PlanLayers, tmp_path: Path) -> None:
    frame = _paced(layers, {CD1: 9, CD2: 12})
    result = progress(layers, frame, as_of=date(2021, 11, 2))
    cds = result.cds.set_index("cd_code")
    assert result.summary["phase"] == "ended"
    assert cds.at[CD1, "lagging"] and cds.at[CD1, "households_short"] == 3
    assert cds.at[CD1, "projected_completion"] == pytest.approx(0.75)
    assert cds.at[CD2, "status"] == "complete"
    write_progress(result, tmp_path / "out", title="t", lang="en")
    en = pd.read_csv(tmp_path / "out" / "cd_progress.csv", dtype=str, keep_default_na=False)
    assert _row(en, "cd_code", CD1)["lagging_reason"] == (
        "the field period has ended at 75.0%: 3 households not done")


def test_not_started_before_the_period(layers: PlanLayers, tmp_path: Path) -> None:
    rec = Records()
    b = _units(layers, CD1)["building_id"].tolist()
    rec.household(b[0], day="2021-09-15", channel="web", persons=2)
    result = progress(layers, rec.frame(), as_of=date(2021, 9, 30))
    assert not result.cds["lagging"].any() and not result.ids["lagging"].any()
    assert not result.settlements["lagging"].any()
    assert set(result.cds["status"]) == {"not_started"}
    assert result.cds["projected_completion"].isna().all()
    assert _row(result.cds, "cd_code", CD1)["done_households"] == 1
    assert result.summary["phase"] == "not_started"
    assert result.summary["counting_districts"]["lagging"] == 0
    assert result.summary["field_days"]["elapsed"] == 0
    write_progress(result, tmp_path / "out", title="t", lang="en")
    en = pd.read_csv(tmp_path / "out" / "cd_progress.csv", dtype=str, keep_default_na=False)
    assert set(en["lagging_reason"]) == {"not started: the field period starts on 2021-10-01"}
    page = (tmp_path / "out" / "dashboard.html").read_text(encoding="utf-8")
    assert "has not started" in page


def test_over_coverage(layers: PlanLayers, tmp_path: Path) -> None:
    units = _units(layers, CD1)
    rec = Records()
    # 26 residents expected; 28 persons counted -> 107.7 % > 105 %.
    for _ in range(7):
        rec.household(units["building_id"].iloc[0], day="2021-10-03", persons=4)
    b2 = _units(layers, CD2)["building_id"].iloc[0]
    rec.household(b2, day="2021-10-03", persons=29)  # 29 of 28 -> 103.6 %: not flagged
    frame = rec.frame()
    result = progress(layers, frame, as_of=AS_OF)
    cds = result.cds.set_index("cd_code")
    assert cds.at[CD1, "coverage"] == pytest.approx(28 / 26)
    assert cds.at[CD1, "over_coverage"]
    assert not cds.at[CD2, "over_coverage"]
    assert result.summary["over_covered_cds"] == [CD1]
    assert result.summary["counting_districts"]["over_coverage"] == 1
    assert _row(result.ids, "id_code", f"{SETTLEMENT}-01")["n_cd_over_coverage"] == 1
    write_progress(result, tmp_path / "out", title="t", lang="en")
    en = pd.read_csv(tmp_path / "out" / "cd_progress.csv", dtype=str, keep_default_na=False)
    assert _row(en, "cd_code", CD1)["over_coverage_reason"] == (
        "coverage 107.7% above 105%: possible duplicates or register under-count")
    relaxed = progress(layers, frame, as_of=AS_OF, over_threshold=1.1)
    assert not relaxed.cds["over_coverage"].any()
    with pytest.raises(DistrictingError, match="over_threshold"):
        progress(layers, frame, as_of=AS_OF, over_threshold=-1)


# ---------------------------------------------------------------- outputs


def _features(page: str) -> list[list[dict[str, Any]]]:
    """The GeoJSON feature lists drawn on the dashboard's map, in order."""
    decoder = json.JSONDecoder()
    out = []
    for match in re.finditer(r"geo_json_\w+_add\(", page):
        data, _ = decoder.raw_decode(page, match.end())
        out.append(data["features"])
    return out


def test_outputs_hold_no_hashes_or_identifiers(
        layers: PlanLayers, mixed: pd.DataFrame, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        result = progress(layers, mixed, as_of=AS_OF)
        out = write_progress(result, tmp_path / "out", title="Progress")
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    secrets = set(mixed["iin_hash"]) - {""}
    assert len(secrets) > 50
    blobs = [p.read_bytes() for p in out.iterdir()] + [caplog.text.encode()]
    for blob in blobs:
        assert b"deadbeef" not in blob
        assert b"iin_hash" not in blob
        for secret in list(secrets)[:20]:
            assert secret.encode() not in blob
        assert b"hh-0" not in blob  # household identifiers
        assert b"rec-0" not in blob  # record identifiers


def test_dashboard_map_and_charts(layers: PlanLayers, tmp_path: Path) -> None:
    frame = _paced(layers, {CD1: 6, CD2: 8})
    result = progress(layers, frame, as_of=AS_OF)
    out = write_progress(result, tmp_path / "out", title="Ход переписи")
    page = (out / "dashboard.html").read_text(encoding="utf-8")
    layers_drawn = _features(page)
    cd_features = [f for features in layers_drawn for f in features
                   if "cd_code" in f["properties"]]
    assert sorted(f["properties"]["cd_code"] for f in cd_features) == sorted(
        layers.counting_districts["cd_code"])
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in cd_features)
    assert page.count("data:image/png;base64,") == 2
    assert page.count('class="folium-map"') == 1
    assert "tile.openstreetmap" not in page
    assert re.search(r"<title>Ход переписи</title>", page)
    # Lagging CDs are outlined red and drawn last; tooltips carry the figures.
    lagging = set(result.cds.loc[result.cds["lagging"], "cd_code"])
    order = [f["properties"]["cd_code"] for f in cd_features]
    assert set(order[-len(lagging):]) == lagging
    assert "#d7191c" in page
    tip = next(f["properties"]["tip"] for f in cd_features
               if f["properties"]["cd_code"] == CD1)
    assert "6 из 12" in tip and "75,0" in tip
    assert "Обойдено домохозяйств" in page
    english = write_progress(result, tmp_path / "en", title="Progress", lang="en")
    text = (english / "dashboard.html").read_text(encoding="utf-8")
    assert "Households done" in text and "Обойдено" not in text
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["as_of"] == "2021-10-20"
    assert summary["counting_districts"]["lagging"] == len(lagging)
    assert summary["totals"]["done_households"] == 14


def test_outputs_are_byte_identical(layers: PlanLayers, mixed: pd.DataFrame,
                                    tmp_path: Path) -> None:
    first = write_progress(progress(layers, mixed, as_of=AS_OF), tmp_path / "a", title="T")
    shuffled = mixed.sample(frac=1.0, random_state=3)
    second = write_progress(progress(layers, shuffled, as_of=AS_OF), tmp_path / "b", title="T")
    for name in OUTPUT_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # An earlier output is replaced in place.
    again = write_progress(progress(layers, mixed, as_of=date(2021, 10, 25)),
                           tmp_path / "a", title="T")
    assert json.loads((again / "summary.json").read_text())["as_of"] == "2021-10-25"
    assert sorted(p.name for p in again.iterdir()) == sorted(OUTPUT_FILES)


def test_unknown_language_writes_nothing(layers: PlanLayers, mixed: pd.DataFrame,
                                         tmp_path: Path) -> None:
    result = progress(layers, mixed, as_of=AS_OF)
    with pytest.raises(DistrictingError, match="language"):
        write_progress(result, tmp_path / "out", title="T", lang="de")
    assert not (tmp_path / "out").exists()


def test_folder_of_other_files_is_refused(layers: PlanLayers, mixed: pd.DataFrame,
                                          tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(InputFileError):
        write_progress(progress(layers, mixed, as_of=AS_OF), target, title="T")
    assert (target / "notes.txt").read_text() == "keep me"


def test_missing_columns_and_bad_dates(layers: PlanLayers, mixed: pd.DataFrame) -> None:
    with pytest.raises(DistrictingError, match="iin_hash"):
        progress(layers, mixed.drop(columns=["iin_hash"]), as_of=AS_OF)
    raw = mixed.drop(columns=["iin_hash"]).assign(iin="")
    with pytest.raises(DistrictingError, match="deduplicate"):
        progress(layers, raw, as_of=AS_OF)
    with pytest.raises(DistrictingError, match="ends"):
        progress(layers, mixed, as_of=AS_OF, period=(date(2021, 10, 30), date(2021, 10, 1)))


def test_run_progress_end_to_end(tmp_path: Path, mixed: pd.DataFrame) -> None:
    plan_dir = write_plan(dict(_two_settlements().as_dict()), tmp_path / "plan")
    half = len(mixed) // 2
    files = [tmp_path / "a.csv", tmp_path / "b.csv"]
    mixed.iloc[:half].to_csv(files[0], index=False)
    mixed.iloc[half:].to_csv(files[1], index=False)
    result = run_progress(plan_dir, files, as_of=AS_OF, out_dir=plan_dir / "progress",
                          lang="en")
    direct = progress(_two_settlements(), mixed, as_of=AS_OF)
    assert result.summary == direct.summary
    page = (plan_dir / "progress" / "dashboard.html").read_text(encoding="utf-8")
    assert "<title>Census progress as of 2021-10-20</title>" in page
    with pytest.raises(DistrictingError, match="record_id"):
        read_progress_records([files[0], files[0]])
    with pytest.raises(InputFileError):
        read_progress_records([tmp_path / "missing.csv"])


def test_dashboard_in_a_real_browser(layers: PlanLayers, tmp_path: Path) -> None:
    """The map draws one polygon per CD, the lagging ones outlined red; nothing fails."""
    from web_assets import CHROMIUM, CHROMIUM_ARGS, offline_assets, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    result = progress(layers, _paced(layers, {CD1: 6, CD2: 8}), as_of=AS_OF)
    out = write_progress(result, tmp_path / "out", title="Progress", lang="en")
    errors: list[str] = []
    assets = offline_assets()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(5000)
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.route("**/*", assets.handle)
            page.goto((out / "dashboard.html").as_uri())
            page.wait_for_selector("path.cd-progress")
            assert page.locator("path.cd-progress").count() == len(result.cds)
            red = page.locator('path.cd-progress[stroke="#d7191c"]').count()
            assert red == int(result.cds["lagging"].sum()) > 0
            assert page.locator("path.id-outline").count() == len(result.ids)
            assert page.locator("figure img").count() == 2
            assert all(page.locator("figure img").nth(i).evaluate("img => img.naturalWidth") > 0
                       for i in range(2))
        finally:
            browser.close()
    assert errors == []
    assert assets.aborted == []


def test_codes_from_a_plan_are_drawn_as_text_not_math(layers: PlanLayers,
                                                      mixed: pd.DataFrame) -> None:
    # A plan folder from someone else may carry any code; matplotlib read "$...$" in a
    # tick label as math and failed on "$\frac$".
    from districting.fieldops.progress import id_chart_png

    result = progress(layers, mixed, as_of=AS_OF)
    result.ids["id_code"] = [rf"$\frac${i}" for i in range(len(result.ids))]
    assert id_chart_png(result).startswith(b"\x89PNG")
