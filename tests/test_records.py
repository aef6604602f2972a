"""Tests of reading Stage-2 record files: text cells, leading zeros, every problem located."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from districting.errors import DistrictingError, InputFileError
from districting.fieldops.iin import make_iin
from districting.fieldops.records import (
    ALL_COLUMNS,
    CENSUS_WINDOW,
    MAX_PERSONS,
    ROW_PROBLEM,
    parse_window,
    read_record_table,
    read_records,
    read_table,
)

CHILD = make_iin(date(2005, 6, 15), "F", 12)  # born in 2005: starts with a zero
ADULT = make_iin(date(1987, 10, 8), "M", 4012)
HEADER = "record_id,iin,building_id,dwelling,household_id,persons,channel,submitted_at," \
         "cd_code,interviewer,status"


def _rows() -> list[dict[str, str]]:
    return [
        {"record_id": "R1", "iin": CHILD, "building_id": "B1", "dwelling": "5",
         "household_id": "H1", "persons": "2", "channel": "web",
         "submitted_at": "2021-09-03T14:22:05+06:00", "cd_code": "", "interviewer": "",
         "status": ""},
        {"record_id": "R2", "iin": ADULT, "building_id": "B1", "dwelling": "5",
         "household_id": "H1", "persons": "2", "channel": "tablet",
         "submitted_at": "2021-10-03T10:00:00+06:00", "cd_code": "CD1", "interviewer": "I1",
         "status": "completed"},
        {"record_id": "R3", "iin": "", "building_id": "B2", "dwelling": "",
         "household_id": "H2", "persons": "", "channel": "tablet",
         "submitted_at": "2021-10-04T11:00:00+06:00", "cd_code": "CD1", "interviewer": "I1",
         "status": "refused"},
    ]


def _write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(ALL_COLUMNS)
    lines = [",".join(columns)] + [",".join(row.get(c, "") for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_is_read_as_text_with_leading_zeros(tmp_path: Path) -> None:
    records, problems = read_records([_write_csv(tmp_path / "a.csv", _rows())])
    assert problems == []
    assert list(records.columns) == [*ALL_COLUMNS, "source", "row", ROW_PROBLEM]
    assert records[ROW_PROBLEM].tolist() == ["", "", ""]
    assert records["iin"].tolist() == [CHILD, ADULT, ""]
    assert CHILD.startswith("0") and len(str(records["iin"].iat[0])) == 12
    assert records["source"].tolist() == ["a.csv"] * 3
    assert records["row"].tolist() == [1, 2, 3]
    assert records["persons"].tolist() == ["2", "2", ""]


def test_semicolon_separated_csv(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "excel.csv", _rows())
    path.write_text(path.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8-sig")
    records, problems = read_records([path])
    assert problems == []
    assert records["iin"].tolist() == [CHILD, ADULT, ""]


def test_parquet_with_text_iins(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pd.DataFrame(_rows()).to_parquet(path)
    records, problems = read_records([path])
    assert problems == []
    assert records["iin"].tolist() == [CHILD, ADULT, ""]


def test_parquet_with_numeric_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(_rows()[:2])
    frame["iin"] = [int(CHILD), int(ADULT)]  # the leading zero is lost in the file
    frame["dwelling"] = [5.0, 5.0]
    frame["persons"] = [2, 2]
    frame["submitted_at"] = pd.to_datetime(frame["submitted_at"])
    path = tmp_path / "numbers.parquet"
    frame.to_parquet(path)
    records, problems = read_records([path])
    assert records["iin"].tolist() == [CHILD, ADULT]
    assert records["dwelling"].tolist() == ["5", "5"]
    assert records["persons"].tolist() == ["2", "2"]
    assert records["submitted_at"].iat[0] == "2021-09-03T14:22:05+06:00"
    assert [(p.severity, p.column) for p in problems] == [("warning", "iin")]
    assert "leading zeros" in problems[0].message


def test_row_problems_are_warnings_with_file_row_and_column(tmp_path: Path) -> None:
    rows = _rows()
    rows[0]["channel"] = "fax"
    rows[1]["submitted_at"] = "3 October"
    rows[1]["status"] = ""
    rows[2]["dwelling"] = "0"
    extra = dict(rows[0], record_id="R4", channel="tablet", status="finished", persons="x",
                 iin="8.71008E+11")
    records, problems = read_records([_write_csv(tmp_path / "a.csv", [*rows, extra])])
    assert len(records) == 4
    found = {(p.source, p.row, p.column): p for p in problems}
    assert set(found) == {
        ("a.csv", 1, "channel"), ("a.csv", 2, "submitted_at"), ("a.csv", 2, "status"),
        ("a.csv", 3, "dwelling"), ("a.csv", 4, "status"), ("a.csv", 4, "persons"),
        ("a.csv", 4, "iin"),
    }
    assert all(p.severity == "warning" for p in problems)
    assert "channel 'fax' is not one of web, egov, aitu, tablet" in found["a.csv", 1,
                                                                          "channel"].message
    assert "quarantined" in found["a.csv", 2, "submitted_at"].message
    assert "needs a status" in found["a.csv", 2, "status"].message
    assert "status 'finished'" in found["a.csv", 4, "status"].message
    assert "scientific notation" in found["a.csv", 4, "iin"].message
    assert str(found["a.csv", 1, "channel"]).startswith(
        "warning: a.csv, row 1, column 'channel': (record_id 'R1')")


def test_messages_never_quote_an_iin(tmp_path: Path) -> None:
    rows = _rows()
    rows[0]["channel"] = ADULT  # columns swapped by mistake
    rows[0]["submitted_at"] = CHILD
    _, problems = read_records([_write_csv(tmp_path / "a.csv", rows)])
    assert len(problems) == 2
    for problem in problems:
        assert ADULT not in str(problem) and CHILD not in str(problem)
    assert "'8710******" in str(problems[0])  # shown masked


def test_missing_column_is_an_error_for_the_file(tmp_path: Path) -> None:
    columns = [c for c in ALL_COLUMNS if c not in ("channel", "persons")]
    path = _write_csv(tmp_path / "a.csv", _rows(), columns)
    with pytest.raises(DistrictingError) as info:
        read_records([path])
    message = str(info.value)
    assert message.splitlines()[0] == "the records have 2 error(s):"
    assert "  error: a.csv, column 'persons': required column is missing" in message
    assert "  error: a.csv, column 'channel': required column is missing" in message


def test_tablet_records_need_a_status_column(tmp_path: Path) -> None:
    columns = [c for c in ALL_COLUMNS if c != "status"]
    with pytest.raises(DistrictingError, match="tablet records but no status column"):
        read_records([_write_csv(tmp_path / "a.csv", _rows(), columns)])
    online = _write_csv(tmp_path / "online.csv", _rows()[:1],
                        [c for c in ALL_COLUMNS if c not in ("status", "cd_code", "interviewer")])
    records, problems = read_records([online])
    assert problems == [] and records["status"].tolist() == [""]


def test_several_files_and_duplicate_ids_across_them(tmp_path: Path) -> None:
    a = _write_csv(tmp_path / "a.csv", _rows())
    b_rows = [dict(_rows()[0], record_id="R9"), dict(_rows()[1], record_id="R2"),
              dict(_rows()[2], record_id="")]
    b = tmp_path / "b.parquet"
    pd.DataFrame(b_rows).to_parquet(b)
    records, problems = read_records([a, b])  # identity problems no longer stop the run
    assert len(records) == 6
    assert [str(p) for p in problems] == [
        "warning: b.parquet, row 2, column 'record_id': (record_id 'R2') record_id 'R2' is "
        "used 2 times by identical records; this copy is left out, the one in a.csv "
        "row 2 is used; the record will be quarantined",
        "warning: b.parquet, row 3, column 'record_id': record_id is empty; the record will "
        "be quarantined",
    ]
    b_rows[1]["record_id"] = "R8"
    b_rows[2]["record_id"] = "R7"
    pd.DataFrame(b_rows).to_parquet(b)
    records, problems = read_records([a, b])
    assert problems == []
    assert list(zip(records["source"], records["row"], strict=True)) == [
        ("a.csv", 1), ("a.csv", 2), ("a.csv", 3), ("b.parquet", 1), ("b.parquet", 2),
        ("b.parquet", 3)]


def test_duplicate_id_within_one_file(tmp_path: Path) -> None:
    rows = _rows()
    rows[2]["record_id"] = "R1"  # another record under R1: neither can be trusted
    records, problems = read_records([_write_csv(tmp_path / "a.csv", rows)])
    assert len(records) == 3
    assert [(p.row, p.column) for p in problems] == [(1, "record_id"), (3, "record_id")]
    assert all("record_id 'R1' is used by 2 different records (a.csv row 1, a.csv row 3); "
               "every copy is quarantined" in p.message for p in problems)


def test_malformed_csv_rows_are_kept_with_their_problem(tmp_path: Path) -> None:
    """Too many or too few cells spoil one row, not the file."""
    path = _write_csv(tmp_path / "a.csv", _rows())
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(2, lines[1].replace("R1,", "R4,", 1) + ",surplus")  # 12 cells
    lines.insert(3, "R5,,B1,5")  # 4 cells
    lines.insert(4, '"R6"x' + lines[1][2:])  # text after a closing quote: read as pandas does
    lines.insert(5, "")  # a blank line is no row
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, problems = read_records([path])  # before: "cannot parse the CSV", nothing read
    assert records["record_id"].tolist() == ["R1", "R4", "R5", "R6x", "R2", "R3"]
    assert records["row"].tolist() == [1, 2, 3, 4, 5, 6]
    problem = records[ROW_PROBLEM].tolist()
    assert problem[0] == problem[3] == problem[4] == problem[5] == ""
    assert problem[1] == ("the row has 12 cell(s) but the header has 11 (line 3); its cells "
                          "may be in the wrong columns")
    assert problem[2].startswith("the row has 4 cell(s) but the header has 11 (line 4)")
    assert records.loc[2, "dwelling"] == "5" and records.loc[2, "channel"] == ""
    # one problem per malformed row: its cells (R5 has no channel) are not judged one by one
    assert [(p.row, p.column) for p in problems] == [(2, None), (3, None)]
    assert "(record_id 'R4') the row has 12 cell(s)" in str(problems[0])
    assert all("quarantined" in p.message for p in problems)
    # what spoils the rest of the file is still an error of the file
    path.write_text(HEADER + "\n" + '"R1,' + lines[1][3:] + "\nR2,x\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="line 2: a quoted cell is never closed"):
        read_records([path])


def test_household_size_must_be_a_plausible_whole_number(tmp_path: Path) -> None:
    rows = _rows()
    sizes = ["-3", "three", "2.5", "1000000000", "0", str(MAX_PERSONS + 1), "",
             "1", str(MAX_PERSONS), "05"]
    many = [dict(rows[0], record_id=f"P{k}", persons=value) for k, value in enumerate(sizes)]
    vacant = [dict(rows[2], record_id=f"V{k}", status="vacant", persons=value)
              for k, value in enumerate(["", "0", "2", "-1"])]
    records, problems = read_records([_write_csv(tmp_path / "a.csv", many + vacant)])
    flagged = {records["record_id"].iat[p.row - 1]: p.message for p in problems}
    assert set(flagged) == {"P0", "P1", "P2", "P3", "P4", "P5", "P6", "V3"}
    assert flagged["P3"] == ("(record_id 'P3') persons '1000000000' is not a whole number "
                             f"from 1 to {MAX_PERSONS}; the record will be quarantined")
    assert "persons (household size) is empty" in flagged["P6"]


def test_census_window() -> None:
    assert (date(2021, 9, 1), date(2021, 10, 30)) == CENSUS_WINDOW
    assert parse_window(" 2021-09-01 / 2021-10-30 ") == CENSUS_WINDOW
    for bad in ("2021-09-01", "2021-09-01/2021-13-01", "2021-10-30/2021-09-01", "a/b/c"):
        with pytest.raises(DistrictingError, match="census window"):
            parse_window(bad)


def test_other_columns_are_ignored_with_a_warning(tmp_path: Path) -> None:
    rows = [dict(row, note="x") for row in _rows()]
    records, problems = read_records(
        [_write_csv(tmp_path / "a.csv", rows, [*ALL_COLUMNS, "note"])])
    assert "note" not in records.columns
    assert [(p.severity, p.row, p.message) for p in problems] == [
        ("warning", None, "column(s) ignored: 'note'")]


def test_same_file_names_in_two_folders_are_told_apart(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = _write_csv(tmp_path / "x" / "records.csv", _rows()[:1])
    b = _write_csv(tmp_path / "y" / "records.csv", [dict(_rows()[0], record_id="R5")])
    records, _ = read_records([a, b])
    assert records["source"].tolist() == [str(a), str(b)]


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        read_records([tmp_path / "missing.csv"])
    with pytest.raises(InputFileError, match=r"unsupported record format '\.xlsx'"):
        (tmp_path / "a.xlsx").write_bytes(b"x")
        read_records([tmp_path / "a.xlsx"])
    with pytest.raises(InputFileError, match="not UTF-8"):
        (tmp_path / "latin.csv").write_bytes(HEADER.encode() + b"\nR1,\xe9\n")
        read_records([tmp_path / "latin.csv"])
    with pytest.raises(InputFileError, match="empty"):
        (tmp_path / "empty.csv").write_bytes(b"")
        read_records([tmp_path / "empty.csv"])
    with pytest.raises(InputFileError, match="Parquet"):
        (tmp_path / "bad.parquet").write_bytes(b"not parquet")
        read_records([tmp_path / "bad.parquet"])
    with pytest.raises(InputFileError, match="given twice"):
        path = _write_csv(tmp_path / "a.csv", _rows())
        read_records([path, path])
    with pytest.raises(InputFileError, match="no record files"):
        read_records([])


def test_header_only_file_gives_no_records(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(HEADER + "\n", encoding="utf-8")
    records, problems = read_records([path])
    assert len(records) == 0 and problems == []


def test_our_own_csv_reads_back_as_written(tmp_path: Path) -> None:
    # Our CSV writers put a quote before text a spreadsheet would take for a formula
    # (outputs.cells); reading such a file back gives the text as it was.
    from districting.outputs.cells import frame_csv

    texts = ["=1+2", "-B1", "+7 701", "@home", "'=x", "'plain", "ул. Мира, 5", ""]
    frame = pd.DataFrame({"record_id": [f"r{i}" for i in range(len(texts))], "note": texts})
    path = tmp_path / "ours.csv"
    path.write_text(frame_csv(frame, lineterminator="\n"), encoding="utf-8")
    assert "'=1+2" in path.read_text(encoding="utf-8")
    assert list(read_table(path)["note"]) == texts
    table, problems = read_record_table(path)
    assert list(table["note"]) == texts and problems == [""] * len(texts)
