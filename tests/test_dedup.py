"""Tests of Stage-2 deduplication: nothing lost, no raw IIN written, truth recovered."""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from districting.errors import DistrictingError, InputFileError
from districting.fieldops import dedup as dedup_module
from districting.fieldops.dedup import (
    OUTPUT_FILES,
    DedupResult,
    dedup,
    default_salt_path,
    load_or_create_salt,
    write_dedup,
)
from districting.fieldops.generate import (
    GeneratedRecords,
    generate_records,
    score_dedup,
    write_records,
)
from districting.fieldops.iin import check_iin, hash_iin, make_iin, mask_iin
from districting.fieldops.records import ALL_COLUMNS, MAX_PERSONS, read_records

SALT = bytes(range(32))
TABLES = tuple(OUTPUT_FILES)


def synthetic_units(n: int = 300, *, seed: int = 7, online_share: float = 0.5) -> pd.DataFrame:
    """~``n`` units: flats, houses, a dormitory and buildings split by dwelling ranges."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        building = f"B{i:05d}"
        if i % 50 == 49:  # a large building split into two units
            for part, (first, last) in enumerate(((1, 40), (41, 80)), start=1):
                rows.append({"unit_id": f"{building}/{part}", "building_id": building,
                             "dwellings": 40, "residents": 90, "households": 38,
                             "dwelling_from": first, "dwelling_to": last})
            continue
        kind = rng.choice(["house", "flats", "empty", "dorm"], p=[0.55, 0.35, 0.07, 0.03])
        dwellings, residents, households = {
            "house": (1, int(rng.integers(1, 7)), 1),
            "flats": (int(rng.integers(8, 40)), 0, 0),
            "empty": (0, 0, 0),
            "dorm": (10, 40, 40),
        }[str(kind)]
        if kind == "flats":
            households = int(dwellings * rng.uniform(0.85, 1.0))
            residents = int(households * rng.uniform(2.0, 3.2))
        rows.append({"unit_id": building, "building_id": building, "dwellings": dwellings,
                     "residents": residents, "households": households,
                     "dwelling_from": 0, "dwelling_to": 0})
    units = pd.DataFrame(rows)
    units["settlement_id"] = "431010000"
    units["online_share"] = online_share
    units["cd_code"] = [f"431010000-01-{1 + k // 40:03d}" for k in range(len(units))]
    return units


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return synthetic_units()


@pytest.fixture(scope="module")
def generated(units: pd.DataFrame) -> GeneratedRecords:
    return generate_records(units, seed=11)


@pytest.fixture(scope="module")
def written(generated: GeneratedRecords, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[DedupResult, Path, pd.DataFrame]:
    """Records written to CSV, read back, deduplicated and written to a folder."""
    folder = tmp_path_factory.mktemp("dedup")
    path = write_records(generated.records, folder / "records.csv")
    records, problems = read_records([path])
    assert problems == []
    result = dedup(records, known_buildings=generated.known_buildings, salt=SALT)
    out = write_dedup(result, folder / "out")
    return result, out, records


def _read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / OUTPUT_FILES[name][0], dtype=str, keep_default_na=False)


# --- the generator ---------------------------------------------------------------------

def test_generator_is_deterministic_and_varies_with_the_seed(units: pd.DataFrame,
                                                             generated: GeneratedRecords) -> None:
    again = generate_records(units, seed=11)
    pd.testing.assert_frame_equal(again.records, generated.records)
    pd.testing.assert_frame_equal(again.truth, generated.truth)
    other = generate_records(units, seed=12)
    assert not other.records["iin"].equals(generated.records["iin"])


def test_generator_injects_every_kind(generated: GeneratedRecords) -> None:
    counts = generated.counts()
    print("generated:", counts)
    assert list(generated.records.columns) == list(ALL_COLUMNS)
    assert all(counts[kind] > 0 for kind in counts)
    assert counts["conflict"] % 2 == 0
    records = generated.records
    persons = records[(records["iin"] != "")]
    online = records["channel"].isin(["web", "egov", "aitu"])
    assert 0.02 < counts["duplicate"] / online.sum() < 0.09
    assert 0.002 < counts["invalid_iin"] / len(persons) < 0.01
    truth = generated.truth.set_index("record_id")["kind"]
    valid = persons["iin"].map(lambda v: check_iin(v) is None)
    assert (~valid).sum() == counts["invalid_iin"]
    assert set(persons["record_id"][~valid]) == set(truth.index[truth == "invalid_iin"])
    unknown = ~records["building_id"].isin(generated.known_buildings)
    assert set(records["record_id"][unknown]) == set(truth.index[truth == "unknown_address"])


def test_generator_without_injections_lists_every_resident_once(units: pd.DataFrame) -> None:
    units = units.assign(online_share=1.0)
    clean = generate_records(units, seed=3, duplicate_rate=0, invalid_rate=0,
                             unknown_address_rate=0, conflict_rate=0)
    records = clean.records
    assert set(clean.truth["kind"]) == {"original"}
    assert records["iin"].is_unique and records["iin"].map(check_iin).isna().all()
    per_building = records.groupby("building_id").size()
    expected = units.groupby("building_id")["residents"].sum()
    assert per_building.to_dict() == expected[expected > 0].to_dict()
    households = records.groupby("household_id")["persons"].agg(["first", "size"])
    assert (households["first"].astype(int) == households["size"]).all()
    ages = records["iin"].map(lambda v: 2021 - int(("19" if v[6] in "34" else "20") + v[:2]))
    assert ages.between(0, 91).all() and (ages < 18).mean() > 0.15
    split = units[units["dwelling_to"] > 0]
    for _, unit in split.iterrows():
        numbers = records.loc[records["building_id"] == unit["building_id"], "dwelling"]
        assert numbers.astype(int).between(1, 80).all()
    houses = units.loc[(units["dwellings"] == 1), "building_id"]
    assert (records.loc[records["building_id"].isin(houses), "dwelling"] == "").all()
    stamps = pd.to_datetime(records["submitted_at"], format="ISO8601")
    assert stamps.min() >= pd.Timestamp("2021-09-01T00:00:00+06:00")
    assert stamps.max() <= pd.Timestamp("2021-10-15T23:59:59+06:00")


def test_generated_records_round_trip_through_parquet(generated: GeneratedRecords,
                                                      tmp_path: Path) -> None:
    path = write_records(generated.records, tmp_path / "records.parquet")
    records, problems = read_records([path])
    assert problems == []
    pd.testing.assert_frame_equal(records[list(ALL_COLUMNS)].astype(object),
                                  generated.records.astype(object), check_dtype=False)
    with pytest.raises(DistrictingError, match=r"csv or \.parquet"):
        write_records(generated.records, tmp_path / "records.xlsx")


# --- dedup on generated records ----------------------------------------------------------

def test_nothing_is_lost(written: tuple[DedupResult, Path, pd.DataFrame]) -> None:
    _, out, records = written
    placed = [rid for name in TABLES for rid in _read(out, name)["record_id"]]
    assert len(placed) == len(records)
    assert sorted(placed) == sorted(records["record_id"])


def test_counts_add_up(written: tuple[DedupResult, Path, pd.DataFrame]) -> None:
    _, out, records = written
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    sizes = {name: len(_read(out, name)) for name in TABLES}
    assert summary["inputs"] == len(records) == sum(sizes.values())
    assert all(summary[name] == sizes[name] for name in TABLES)
    for name in ("inputs", *TABLES):
        assert sum(c[name] for c in summary["by_channel"].values()) == summary[name]
    for channel, counts in summary["by_channel"].items():
        assert counts["inputs"] == sum(counts[name] for name in TABLES), channel
    assert sum(summary["quarantine_reasons"].values()) == summary["quarantined"]
    assert summary["accepted_persons"] + sum(
        summary["accepted_household_status"].values()) == summary["accepted"]
    assert "salted hashes" in summary["personal_data"]["note"]


def test_no_raw_iin_in_any_output_file(written: tuple[DedupResult, Path, pd.DataFrame]) -> None:
    _, out, records = written
    raw = set(records["iin"][records["iin"] != ""])
    lengths = {len(value) for value in raw}
    assert raw and all(value.isdigit() for value in raw)
    for path in sorted(out.iterdir()):
        data = path.read_bytes()
        windows = {run[i:i + n] for run in re.findall(rb"\d+", data) for n in lengths
                   for i in range(len(run) - n + 1)}
        leaked = {value for value in raw if value.encode() in windows}
        assert not leaked, f"{path.name} holds {len(leaked)} raw IIN(s)"


def test_precision_and_recall_against_the_truth(written: tuple[DedupResult, Path, pd.DataFrame],
                                                generated: GeneratedRecords) -> None:
    result, _, _ = written
    scores = score_dedup(result, generated.truth)
    for kind, score in scores.items():
        print(f"{kind}: {score['correct']}/{score['predicted']} predicted, "
              f"{score['true']} true; precision {score['precision']:.3f}, "
              f"recall {score['recall']:.3f}")
        assert score["true"] > 0
        assert score["precision"] >= 0.99 and score["recall"] >= 0.99, kind


def test_conflicts_all_land_in_conflicts(written: tuple[DedupResult, Path, pd.DataFrame],
                                         generated: GeneratedRecords) -> None:
    _, out, _ = written
    conflicts = _read(out, "conflicts")
    truth = generated.truth
    assert set(conflicts["record_id"]) == set(truth["record_id"][truth["kind"] == "conflict"])
    for _, group in conflicts.groupby("conflict_group"):
        assert group["iin_hash"].nunique() == 1
        addresses = set(zip(group["building_id"], group["dwelling"], strict=True))
        assert len(addresses) >= 2
        assert group["addresses"].nunique() == 1
        assert str(group["addresses"].iat[0]).count(" | ") == len(addresses) - 1
    accepted = _read(out, "accepted")
    assert not set(conflicts["iin_hash"]) & set(accepted["iin_hash"])


def test_outputs_hash_and_mask_iins(written: tuple[DedupResult, Path, pd.DataFrame]) -> None:
    _, out, records = written
    iin_of = dict(zip(records["record_id"], records["iin"], strict=True))
    accepted = _read(out, "accepted")
    for rid, hashed, masked in zip(accepted["record_id"], accepted["iin_hash"],
                                   accepted["iin_masked"], strict=True):
        raw = iin_of[rid]
        assert hashed == (hash_iin(raw, salt=SALT) if raw else "")
        assert masked == mask_iin(raw)
    quarantined = _read(out, "quarantined")
    invalid = quarantined[quarantined["reason"].str.startswith("invalid IIN")]
    assert (invalid["iin_hash"] == "").all()
    assert set(invalid["iin_masked"]) - {"(malformed)"}
    assert all(m == "(malformed)" or re.fullmatch(r"\d{4}\*{6}\d{2}", m)
               for m in invalid["iin_masked"])
    status = accepted[accepted["iin_masked"] == ""]
    assert len(status) and set(status["status"]) <= {"refused", "absent", "vacant"}


def test_byte_identical_with_the_same_salt(written: tuple[DedupResult, Path, pd.DataFrame],
                                           generated: GeneratedRecords, tmp_path: Path) -> None:
    result, out, records = written
    shuffled = records.sample(frac=1, random_state=1)  # input order does not matter either
    for name, frame in (("again", records), ("shuffled", shuffled)):
        rerun = write_dedup(dedup(frame, known_buildings=generated.known_buildings, salt=SALT),
                            tmp_path / name)
        assert sorted(p.name for p in rerun.iterdir()) == sorted(p.name for p in out.iterdir())
        for path in sorted(out.iterdir()):
            assert (rerun / path.name).read_bytes() == path.read_bytes(), (name, path.name)
    salted = dedup(records, known_buildings=None, salt=b"another salt, 32 bytes long....")
    assert not set(salted.accepted["iin_hash"]) & set(result.accepted["iin_hash"]) - {""}
    assert (salted.summary["personal_data"]["salt_fingerprint"]
            != result.summary["personal_data"]["salt_fingerprint"])


def test_demo_sized_run_is_fast(units: pd.DataFrame) -> None:
    import time

    big = pd.concat([units.assign(building_id=units["building_id"] + f"-{k}")
                     for k in range(10)], ignore_index=True)
    start = time.perf_counter()
    generated = generate_records(big, seed=1)
    result = dedup(generated.records, known_buildings=generated.known_buildings, salt=SALT)
    elapsed = time.perf_counter() - start
    print(f"{len(generated.records)} records generated and deduplicated in {elapsed:.2f} s")
    assert elapsed < 10
    assert sum(len(t) for t in result.tables().values()) == len(generated.records)


# --- precedence and rules on hand-made records -------------------------------------------

A = make_iin(date(1987, 10, 8), "M", 101)
B = make_iin(date(1990, 1, 2), "F", 202)
C = make_iin(date(2005, 6, 15), "F", 303)


def _record(record_id: str, iin: str, *, channel: str = "web", at: str = "2021-09-10T10:00:00",
            building: str = "B1", dwelling: str = "1", status: str = "",
            household: str = "H1") -> dict[str, str]:
    return {"record_id": record_id, "iin": iin, "building_id": building, "dwelling": dwelling,
            "household_id": household, "persons": "" if status in ("refused", "absent", "vacant")
            else "2", "channel": channel, "submitted_at": at,
            "cd_code": "CD1" if channel == "tablet" else "",
            "interviewer": "I1" if channel == "tablet" else "", "status": status}


def _run(*records: dict[str, str], known: set[str] | None = None,
         cds: set[str] | None = None) -> DedupResult:
    return dedup(pd.DataFrame(list(records)), known_buildings=known, salt=SALT,
                 known_cds=cds)


def _outcome(result: DedupResult) -> dict[str, str]:
    return {rid: name for name, table in result.tables().items() for rid in table["record_id"]}


def _duplicate_of(result: DedupResult) -> dict[str, str]:
    return dict(zip(result.duplicates["record_id"], result.duplicates["duplicate_of"],
                    strict=True))


def test_complete_record_beats_incomplete_even_when_older() -> None:
    result = _run(
        _record("R1", A, channel="tablet", status="refused", at="2021-10-20T10:00:00"),
        _record("R2", A, channel="tablet", status="completed", at="2021-10-02T10:00:00"),
    )
    assert _outcome(result) == {"R2": "accepted", "R1": "duplicates"}
    assert _duplicate_of(result) == {"R1": "R2"}


def test_online_beats_tablet_even_when_older() -> None:
    result = _run(
        _record("R1", A, channel="tablet", status="completed", at="2021-10-20T10:00:00"),
        _record("R2", A, channel="egov", at="2021-09-02T10:00:00"),
    )
    assert _duplicate_of(result) == {"R1": "R2"}


def test_latest_online_submission_wins_then_smallest_record_id() -> None:
    result = _run(
        _record("R3", A, channel="web", at="2021-09-02T10:00:00+06:00"),
        _record("R2", A, channel="aitu", at="2021-09-02T05:00:00+00:00"),  # 11:00 in +06:00
        _record("R1", A, channel="egov", at="2021-09-01T10:00:00+06:00"),
        _record("R5", B, channel="web", at="2021-09-03T10:00:00"),
        _record("R4", B, channel="egov", at="2021-09-03T10:00:00"),
    )
    assert _outcome(result) == {"R2": "accepted", "R1": "duplicates", "R3": "duplicates",
                                "R4": "accepted", "R5": "duplicates"}
    assert _duplicate_of(result) == {"R1": "R2", "R3": "R2", "R5": "R4"}


def test_an_incomplete_record_alone_is_accepted() -> None:
    result = _run(_record("R1", A, channel="tablet", status="absent"))
    assert _outcome(result) == {"R1": "accepted"}
    assert result.accepted["iin_masked"].iat[0] == mask_iin(A)


def test_visits_without_a_person_are_accepted_as_household_status() -> None:
    result = _run(
        _record("R1", "", channel="tablet", status="vacant", household="H7"),
        _record("R2", "", channel="tablet", status="refused", household="H8"),
        _record("R3", "", channel="tablet", status="completed"),
        _record("R4", "", channel="web"),
    )
    assert _outcome(result) == {"R1": "accepted", "R2": "accepted", "R3": "quarantined",
                                "R4": "quarantined"}
    assert (result.accepted[["iin_hash", "iin_masked"]] == "").all().all()
    assert set(result.quarantined["reason"]) == {"missing IIN"}
    assert result.summary["accepted_household_status"] == {"refused": 1, "absent": 0,
                                                           "vacant": 1}
    assert result.summary["accepted_persons"] == 0


def test_same_iin_at_two_addresses_is_a_conflict_for_every_record() -> None:
    result = _run(
        _record("R1", A, building="B1", dwelling="1"),
        _record("R2", A, building="B1", dwelling="1", channel="egov"),
        _record("R3", A, building="B2", dwelling="", channel="tablet", status="completed"),
        _record("R4", B, building="B1", dwelling="1"),
        _record("R5", C, building="B1", dwelling="1"),
        _record("R6", C, building="B1", dwelling="2"),
    )
    assert _outcome(result) == {"R1": "conflicts", "R2": "conflicts", "R3": "conflicts",
                                "R4": "accepted", "R5": "conflicts", "R6": "conflicts"}
    conflicts = result.conflicts.set_index("record_id")
    assert conflicts.loc[["R1", "R2", "R3"], "conflict_group"].tolist() == ["C0001"] * 3
    assert conflicts.loc[["R5", "R6"], "conflict_group"].tolist() == ["C0002"] * 2
    assert conflicts.loc["R1", "addresses"] == "B1 dwelling 1 | B2"
    assert conflicts.loc["R5", "addresses"] == "B1 dwelling 1 | B1 dwelling 2"
    assert result.summary["conflict_groups"] == 2


def test_dwelling_numbers_with_leading_zeros_are_the_same_address() -> None:
    result = _run(_record("R1", A, dwelling="05"), _record("R2", A, dwelling="5",
                                                            channel="egov"))
    assert _outcome(result) == {"R1": "accepted", "R2": "duplicates"}


def test_invalid_iins_are_quarantined_without_quoting_them() -> None:
    bad_date = "871340" + A[6:]
    records = [
        _record("R1", A[:11] + str((int(A[11]) + 1) % 10)),
        _record("R2", A[:11]),
        _record("R3", bad_date),
        _record("R4", A[:6] + "0" + A[7:]),
        _record("R5", "8.71008E+11"),
    ]
    result = _run(*records)
    quarantined = result.quarantined.set_index("record_id")
    assert quarantined["reason"].to_dict() == {
        "R1": "invalid IIN: wrong check digit",
        "R2": "invalid IIN: not 12 digits",
        "R3": "invalid IIN: invalid birth date",
        "R4": "invalid IIN: invalid century digit",
        "R5": "invalid IIN: not 12 digits",
    }
    assert quarantined["iin_masked"].to_dict() == {
        "R1": mask_iin(records[0]["iin"]), "R2": "(malformed)", "R3": mask_iin(bad_date),
        "R4": mask_iin(records[3]["iin"]), "R5": "(malformed)"}
    assert (quarantined["iin_hash"] == "").all()
    text = quarantined.to_csv()
    assert "871340" not in text and A[:11] not in text
    assert result.summary["quarantine_reasons"]["invalid IIN: not 12 digits"] == 2


def test_unknown_addresses_are_quarantined_only_with_a_plan() -> None:
    records = [_record("R1", A, building="B1"), _record("R2", B, building="NOPE"),
               _record("R3", "", building="NOPE", channel="tablet", status="vacant")]
    result = _run(*records, known={"B1"})
    assert _outcome(result) == {"R1": "accepted", "R2": "quarantined", "R3": "quarantined"}
    assert set(result.quarantined["reason"]) == {"unknown address"}
    assert result.quarantined["iin_hash"].iat[0] == hash_iin(B, salt=SALT)
    assert _outcome(_run(*records)) == {"R1": "accepted", "R2": "accepted", "R3": "accepted"}


def test_row_problems_are_quarantined_with_their_reason() -> None:
    result = _run(
        _record("R1", A, channel="fax"),
        _record("R2", B, at="yesterday"),
        _record("R3", C, channel="tablet", status=""),
        _record("R4", C, dwelling="kv. 5"),
        _record("R5", C, building=""),
        _record("R6", C, channel="tablet", status="done"),
    )
    reasons = result.quarantined.set_index("record_id")["reason"].to_dict()
    assert reasons == {"R1": "unknown channel", "R2": "bad submitted_at",
                       "R3": "tablet record without status", "R4": "bad dwelling",
                       "R5": "missing address", "R6": "unknown status"}
    assert result.summary["by_channel"]["(other)"]["quarantined"] == 1


def test_impossible_household_sizes_are_quarantined() -> None:
    """Before, a warning only: these rows reached accepted.csv."""
    sizes = {"R1": "-3", "R2": "three", "R3": "2.5", "R4": "1000000000", "R5": "0",
             "R6": str(MAX_PERSONS + 1), "R7": "", "R8": "1", "R9": str(MAX_PERSONS)}
    people = [make_iin(date(1980, 1, 1 + k), "M", k) for k in range(len(sizes))]
    records = [dict(_record(rid, iin, household=rid), persons=size)
               for (rid, size), iin in zip(sizes.items(), people, strict=True)]
    records += [dict(_record(f"V{k}", "", channel="tablet", status="vacant",
                             household=f"V{k}"), persons=size)
                for k, size in enumerate(["", "0", "3", "-1"])]
    result = _run(*records)
    quarantined = result.quarantined.set_index("record_id")
    assert sorted(quarantined.index) == ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "V3"]
    assert set(quarantined["reason"]) == {"bad persons"}
    assert quarantined.loc["R4", "detail"] == (
        f"persons '1000000000' is not a whole number from 1 to {MAX_PERSONS}")
    assert sorted(result.accepted["record_id"]) == ["R8", "R9", "V0", "V1", "V2"]
    assert result.summary["quarantine_reasons"] == {"bad persons": 8}


def test_tablet_cd_codes_unknown_to_the_plan_are_quarantined() -> None:
    records = [
        dict(_record("R1", A, channel="tablet", status="completed"), cd_code="CD1"),
        dict(_record("R2", B, channel="tablet", status="completed"), cd_code="CD9"),
        dict(_record("R3", "", channel="tablet", status="vacant", household="H3"),
             cd_code=""),
        dict(_record("R4", C, channel="tablet", status="completed", dwelling="2"),
             cd_code=f"CD-{C}"),  # an IIN where the code belongs is masked in the detail
        _record("R5", make_iin(date(1970, 3, 3), "F", 5), channel="egov"),  # no cd_code
        dict(_record("R6", A, building="NOPE"), channel="tablet", status="completed",
             cd_code="CD9"),
    ]
    result = _run(*records, known={"B1"}, cds={"CD1", "CD2"})
    assert _outcome(result) == {"R1": "accepted", "R2": "quarantined", "R3": "quarantined",
                                "R4": "quarantined", "R5": "accepted", "R6": "quarantined"}
    quarantined = result.quarantined.set_index("record_id")
    assert quarantined["reason"].to_dict() == {"R2": "unknown CD", "R3": "unknown CD",
                                               "R4": "unknown CD", "R6": "unknown address"}
    assert quarantined.loc["R2", "detail"] == "cd_code 'CD9' is not a counting district of " \
                                              "the plan"
    assert quarantined.loc["R3", "detail"] == "the tablet record has no cd_code"
    assert C not in quarantined.loc["R4", "detail"]
    assert result.summary["cd_check"] == "cd_code of tablet records checked against the " \
                                         "plan (2 CDs)"
    assert "unknown CD" not in set(_run(*records, known={"B1"}).quarantined["reason"])


def test_submissions_outside_the_census_window_are_quarantined() -> None:
    times = {
        "R1": "2099-10-01T10:00:00+06:00", "R2": "1900-01-01T10:00:00",
        "R3": "2021-08-31T23:59:59+06:00", "R4": "2021-10-31T00:00:00+06:00",
        "R5": "2021-09-01T00:10:00+06:00",  # 31 August in UTC, 1 September as stamped
        "R6": "2021-10-30T23:59:59+06:00", "R7": "2021-10-30", "R8": "2021-09-01",
    }
    people = [make_iin(date(1980, 2, 1 + k), "F", k) for k in range(len(times))]
    records = [_record(rid, iin, at=at, household=rid)
               for (rid, at), iin in zip(times.items(), people, strict=True)]
    result = _run(*records)
    quarantined = result.quarantined.set_index("record_id")
    assert sorted(quarantined.index) == ["R1", "R2", "R3", "R4"]
    assert set(quarantined["reason"]) == {"outside census window"}
    assert quarantined.loc["R1", "detail"] == ("submitted_at '2099-10-01T10:00:00+06:00' is "
                                               "after the census window 2021-09-01 to "
                                               "2021-10-30")
    assert "is before the census window" in quarantined.loc["R2", "detail"]
    assert "2021-09-01 to 2021-10-30" in result.summary["time_check"]
    other = dedup(pd.DataFrame(records), known_buildings=None, salt=SALT,
                  window=(date(2099, 1, 1), date(2099, 12, 31)))
    assert other.accepted["record_id"].tolist() == ["R1"]
    unchecked = dedup(pd.DataFrame(records), known_buildings=None, salt=SALT, window=None)
    assert len(unchecked.accepted) == len(records)


def test_blank_and_repeated_record_ids_are_quarantined_not_fatal() -> None:
    """Before, one such row stopped the whole run. Identical copies: the first (by file
    and row) stays; copies that differ: every one is quarantined."""
    records = pd.DataFrame([
        _record("R1", A), _record("R1", B, household="H2"),  # two people under one id
        _record("R2", C), _record("R2", C),  # the same record twice
        _record("", make_iin(date(1970, 4, 4), "M", 7), household="H3"),
        _record("", make_iin(date(1970, 5, 5), "M", 8), household="H4"),
    ])
    records["source"] = ["a.csv", "b.csv", "a.csv", "b.csv", "a.csv", "a.csv"]
    records["row"] = [1, 1, 2, 2, 3, 4]
    result = dedup(records, known_buildings=None, salt=SALT)
    assert result.accepted[["record_id", "source"]].values.tolist() == [["R2", "a.csv"]]
    quarantined = result.quarantined
    assert quarantined[["record_id", "source", "row", "reason"]].values.tolist() == [
        ["", "a.csv", "3", "missing record_id"], ["", "a.csv", "4", "missing record_id"],
        ["R1", "a.csv", "1", "repeated record_id"], ["R1", "b.csv", "1", "repeated record_id"],
        ["R2", "b.csv", "2", "repeated record_id"]]
    assert quarantined["detail"].iat[2] == (
        "record_id 'R1' is used by 2 different records (a.csv row 1, b.csv row 1); every "
        "copy is quarantined, since which one the id means cannot be told")
    assert quarantined["detail"].iat[4] == (
        "record_id 'R2' is used 2 times by identical records; this copy is left out, the "
        "one in a.csv row 2 is used")
    assert result.summary["inputs"] == 6 == sum(len(t) for t in result.tables().values())
    shuffled = dedup(records.iloc[::-1], known_buildings=None, salt=SALT)
    for name, table in result.tables().items():
        pd.testing.assert_frame_equal(shuffled.tables()[name], table)


def test_iins_in_other_columns_are_masked() -> None:
    result = _run(_record("R1", A, household=f"HH-{A}"), _record("R2", B, household=f"9{B}0"),
                  _record("R3", C, household="H-123456789012"))
    assert result.accepted["household_id"].tolist() == [
        f"HH-{mask_iin(A)}", f"9{mask_iin(B)}0", "H-123456789012"]


def test_record_ids_must_be_free_of_iins() -> None:
    with pytest.raises(DistrictingError, match="contain an IIN"):
        _run(_record(f"web-{A}", A))
    with pytest.raises(DistrictingError, match="contain an IIN"):
        _run(_record("R1", A), _record(f"7{A}", B))
    with pytest.raises(DistrictingError, match="salt"):
        dedup(pd.DataFrame([_record("R1", A)]), known_buildings=None, salt=b"short")


def test_a_broken_partition_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    original = dedup_module._tables

    def losing(*args: object, **kwargs: object) -> DedupResult:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        result.duplicates = result.duplicates.iloc[1:]
        return result

    monkeypatch.setattr(dedup_module, "_tables", losing)
    with pytest.raises(RuntimeError, match=r"internal error: .*\(1 lost"):
        _run(_record("R1", A), _record("R2", A, channel="aitu"))


def test_empty_input() -> None:
    result = dedup(pd.DataFrame(columns=list(ALL_COLUMNS)), known_buildings=set(), salt=SALT)
    assert result.summary["inputs"] == 0
    assert all(len(table) == 0 for table in result.tables().values())


# --- writing and the salt -----------------------------------------------------------------

def test_rewrite_replaces_an_earlier_output_and_a_crash_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_dedup(_run(_record("R1", A)), out)
    write_dedup(_run(_record("R1", A), _record("R2", B)), out)
    assert len(_read(out, "accepted")) == 2
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(result: DedupResult, folder: Path) -> None:
        (folder / "accepted.csv").write_text("half", encoding="utf-8")
        raise OSError("disk full")

    monkeypatch.setattr(dedup_module, "_write_files", crash)
    with pytest.raises(OSError, match="disk full"):
        write_dedup(_run(_record("R9", C)), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_foreign_folder_is_not_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(InputFileError, match="choose a new or empty folder"):
        write_dedup(_run(_record("R1", A)), folder)
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_salt_is_created_once_and_reused(tmp_path: Path) -> None:
    path = default_salt_path(tmp_path / "dedup")
    assert path == tmp_path / "dedup.salt"
    salt = load_or_create_salt(path)
    assert len(salt) == 32
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_salt(path) == salt
    assert path.read_text(encoding="ascii").strip() == salt.hex()
    (tmp_path / "bad.salt").write_text("not hex\n", encoding="ascii")
    (tmp_path / "bad.salt").chmod(0o600)
    with pytest.raises(InputFileError, match="hexadecimal"):
        load_or_create_salt(tmp_path / "bad.salt")
    (tmp_path / "short.salt").write_text("abcd\n", encoding="ascii")
    (tmp_path / "short.salt").chmod(0o600)
    with pytest.raises(InputFileError, match="too short"):
        load_or_create_salt(tmp_path / "short.salt")
    with pytest.raises(InputFileError, match="folder"):
        load_or_create_salt(tmp_path)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_salt_file_open_to_others_is_refused(tmp_path: Path) -> None:
    """Before, a world-readable salt was used without a word."""
    path = tmp_path / "shared.salt"
    path.write_text(SALT.hex() + "\n", encoding="ascii")
    for mode in (0o644, 0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(InputFileError) as info:
            load_or_create_salt(path)
        message = str(info.value)
        assert f"mode {mode:04o}" in message and message.endswith(f"chmod 600 {path}")
        assert SALT.hex() not in message
    path.chmod(0o600)
    assert load_or_create_salt(path) == SALT
    path.chmod(0o400)
    assert load_or_create_salt(path) == SALT
