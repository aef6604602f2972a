"""Generate deterministic synthetic Stage-2 person records from a plan's units, with ground truth.

Each inhabited unit gets its households (sizes summing to its residents, dwelling
numbers within its dwelling range) and persons with valid, unique IINs. A household
answers online with the unit's ``online_share`` (web 55 %, eGov 30 %, Aitu 15 %,
1 Sept–15 Oct 2021); the others get a tablet visit (1–30 Oct 2021: completed 90 %,
refused 3 %, absent 5 %, vacant 2 %; a visit that met no household is one record
with a blank IIN). Then, with known ground truth, it injects duplicates (households
that submit again: the same submission, another online channel, or a tablet
re-entry), invalid IINs (one detectable changed digit, or a wrong length), unknown
addresses (a ``building_id`` not in the plan) and conflicts (one valid IIN at two
addresses). The same units and seed always give the same records.

:func:`score_dedup` measures a deduplication against the truth.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from districting.check import read_plan_layers
from districting.errors import DistrictingError, InputFileError
from districting.fieldops.iin import check_iin, make_iin
from districting.fieldops.records import ALL_COLUMNS, ONLINE_CHANNELS
from districting.outputs.cells import frame_csv
from districting.outputs.writer import write_bytes_atomic

if TYPE_CHECKING:
    from districting.fieldops.dedup import DedupResult

__all__ = [
    "TRUTH_KINDS",
    "GeneratedRecords",
    "generate_records",
    "read_plan_units",
    "score_dedup",
    "write_records",
]

TRUTH_KINDS = ("original", "duplicate", "invalid_iin", "unknown_address", "conflict")
#: The census's reference day: ages are counted to it.
REFERENCE_DATE = date(2021, 10, 1)
ONLINE_WINDOW = (datetime(2021, 9, 1, 0, 0, 0), datetime(2021, 10, 15, 23, 59, 59))
TABLET_DAYS = (date(2021, 10, 1), date(2021, 10, 30))
TABLET_HOURS = (9, 21)
#: Times are written with the offset of Kazakhstan's eastern zone in 2021.
UTC_OFFSET = "+06:00"
ONLINE_SPLIT = (0.55, 0.30, 0.15)  # ONLINE_CHANNELS order: web, egov, aitu
TABLET_STATUS = (("completed", 0.90), ("refused", 0.03), ("absent", 0.05), ("vacant", 0.02))
#: Kinds of duplicate submission and their shares.
DUPLICATE_KINDS = (("exact", 0.40), ("channel", 0.35), ("tablet", 0.25))
RESIDENTS_PER_HOUSEHOLD = 2.7
DEFAULT_ONLINE_SHARE = 0.15


@dataclass
class GeneratedRecords:
    """Synthetic records and their ground truth.

    ``records`` has the columns of :data:`~districting.fieldops.records.ALL_COLUMNS`, all
    text, sorted by ``submitted_at``. ``truth`` has ``record_id``, ``kind`` (one of
    :data:`TRUTH_KINDS`) and ``duplicate_of`` (for a duplicate, the ``record_id`` of the
    record it repeats; ``""`` otherwise). Both records of a conflict are ``conflict``;
    tablet visits that met no household are ``original``. ``known_buildings`` are the
    plan's building ids (the generator's unknown addresses are not among them).
    """

    records: pd.DataFrame
    truth: pd.DataFrame
    known_buildings: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        """Records per truth kind, in :data:`TRUTH_KINDS` order."""
        counts = self.truth["kind"].value_counts()
        return {kind: int(counts.get(kind, 0)) for kind in TRUTH_KINDS}


def read_plan_units(plan_dir: str | Path) -> pd.DataFrame:
    """The ``units`` layer of a plan folder's ``plan.gpkg``, without geometry."""
    layers = read_plan_layers(plan_dir, only=("units",))
    if "units" not in layers:
        raise InputFileError(f"the plan in {plan_dir} has no units layer")
    units = layers["units"]
    return pd.DataFrame(units.drop(columns=units.geometry.name))


def _int_column(units: pd.DataFrame, name: str, default: int = 0) -> np.ndarray:
    if name not in units.columns:
        return np.full(len(units), default, dtype=np.int64)
    values = pd.to_numeric(units[name], errors="coerce").fillna(default)
    return np.maximum(values.to_numpy(dtype=float), 0).round().astype(np.int64)


def _text_column(units: pd.DataFrame, name: str) -> np.ndarray:
    if name not in units.columns:
        return np.full(len(units), "", dtype=object)
    return units[name].map(lambda v: "" if pd.isna(v) else str(v).strip()).to_numpy(object)


def generate_records(
    units: pd.DataFrame,
    *,
    seed: int,
    duplicate_rate: float = 0.04,
    invalid_rate: float = 0.005,
    unknown_address_rate: float = 0.003,
    conflict_rate: float = 0.001,
) -> GeneratedRecords:
    """Synthetic Stage-2 records for a plan's ``units`` layer (see the module docstring).

    Parameters
    ----------
    units
        A plan's units: ``building_id`` and ``residents`` are required; ``households``
        (default residents / 2.7), ``dwellings``, ``dwelling_from``/``dwelling_to`` (split
        buildings), ``online_share`` (default 0.15) and ``cd_code`` are used when present.
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same records.
    duplicate_rate
        Share of online persons whose household submits again.
    invalid_rate
        Share of person records whose IIN is mistyped (always detectably).
    unknown_address_rate
        Share of records (whole online households) with a ``building_id`` not in the plan.
    conflict_rate
        Share of persons who also appear, with the same IIN, at a second address.
    """
    for name in ("building_id", "residents"):
        if name not in units.columns:
            raise DistrictingError(f"the units have no '{name}' column")
    for name, rate in (("duplicate_rate", duplicate_rate), ("invalid_rate", invalid_rate),
                       ("unknown_address_rate", unknown_address_rate),
                       ("conflict_rate", conflict_rate)):
        if not 0.0 <= rate <= 0.5:
            raise DistrictingError(f"{name} must be between 0 and 0.5, not {rate}")
    units = units.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    building = _text_column(units, "building_id")
    known = {b for b in building if b}
    base = _households(units, building, rng)
    rows = _records(base, rng)
    _inject(rows, base, known, rng,
            rates=(duplicate_rate, unknown_address_rate, invalid_rate, conflict_rate))
    return _finish(rows, rng, known)


@dataclass
class _Households:
    """One entry per household (arrays of equal length)."""

    building: np.ndarray  # object
    dwelling: np.ndarray  # object (text, "" for a house)
    size: np.ndarray  # int64
    share: np.ndarray  # float, the unit's online share
    cd_code: np.ndarray  # object
    first_person: np.ndarray  # int64: index of the household's first person

    def __len__(self) -> int:
        return len(self.size)


def _households(units: pd.DataFrame, building: np.ndarray,
                rng: np.random.Generator) -> _Households:
    residents = _int_column(units, "residents")
    if "households" in units.columns:
        households = _int_column(units, "households")
    else:
        households = np.zeros(len(units), dtype=np.int64)
    estimate = np.ceil(residents / RESIDENTS_PER_HOUSEHOLD).astype(np.int64)
    households = np.where(households > 0, households, estimate)
    households = np.clip(households, np.minimum(residents, 1), residents)
    dwellings = _int_column(units, "dwellings", default=1)
    first = _int_column(units, "dwelling_from")
    last = _int_column(units, "dwelling_to")
    split = (last > 0) & (last >= first) & (first > 0)
    share = (pd.to_numeric(units["online_share"], errors="coerce")
             .fillna(DEFAULT_ONLINE_SHARE).clip(0, 1).to_numpy(float)
             if "online_share" in units.columns
             else np.full(len(units), DEFAULT_ONLINE_SHARE))
    cd_code = _text_column(units, "cd_code")
    out_unit: list[np.ndarray] = []
    out_size: list[np.ndarray] = []
    out_dwelling: list[np.ndarray] = []
    for u in np.flatnonzero((residents > 0) & (building != "")):
        count = int(households[u])
        sizes = 1 + rng.multinomial(int(residents[u]) - count, np.full(count, 1.0 / count))
        if split[u]:
            low, n = int(first[u]), int(last[u] - first[u] + 1)
        else:
            low, n = 1, int(dwellings[u])
        if not split[u] and n <= 1:  # a house (or quarters without numbered dwellings)
            numbers = np.full(count, "", dtype=object)
        else:
            picks = (rng.choice(n, count, replace=False) if count <= n
                     else np.concatenate([rng.permutation(n), rng.integers(0, n, count - n)]))
            numbers = np.sort(picks + low).astype(str).astype(object)
        out_unit.append(np.full(count, u))
        out_size.append(sizes.astype(np.int64))
        out_dwelling.append(numbers)
    unit = np.concatenate(out_unit) if out_unit else np.zeros(0, dtype=np.int64)
    size = np.concatenate(out_size) if out_size else np.zeros(0, dtype=np.int64)
    return _Households(
        building=building[unit], dwelling=(np.concatenate(out_dwelling) if out_dwelling
                                           else np.zeros(0, dtype=object)),
        size=size, share=share[unit], cd_code=cd_code[unit],
        first_person=np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
        if len(size) else np.zeros(0, dtype=np.int64),
    )


def _people_iins(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unique valid IINs with realistic ages (heads are adults) and sexes, one per person."""
    total = int(sizes.sum())
    head = np.zeros(total, dtype=bool)
    if total:
        head[np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)] = True
    draw = rng.random(total)
    age = np.where(
        head,
        np.where(draw < 0.8, rng.integers(22, 65, total), rng.integers(65, 91, total)),
        np.where(draw < 0.45, rng.integers(0, 18, total),
                 np.where(draw < 0.9, rng.integers(18, 65, total), rng.integers(65, 91, total))),
    )
    ordinal = (REFERENCE_DATE.toordinal() - np.floor(age * 365.25).astype(np.int64)
               - rng.integers(0, 365, total))
    sexes = np.where(rng.random(total) < 0.5, "M", "F")
    serials = rng.integers(0, 10_000, total)
    used: set[str] = set()
    iins = np.empty(total, dtype=object)
    for i in range(total):
        birth, sex, serial = date.fromordinal(int(ordinal[i])), str(sexes[i]), int(serials[i])
        iin = make_iin(birth, sex, serial)
        while iin in used:
            serial = (int(iin[7:11]) + 1) % 10_000
            iin = make_iin(birth, sex, serial)
        used.add(iin)
        iins[i] = iin
    return iins


class _Rows:
    """Column arrays of the records being built, plus their truth.

    :meth:`append` collects new rows and :meth:`flush` joins them on, once: the columns
    hold the base rows until then (injections only modify base rows in place).
    """

    COLUMNS = ("iin", "building_id", "dwelling", "household_id", "persons", "channel",
               "cd_code", "interviewer", "status")

    def __init__(self, columns: dict[str, np.ndarray], seconds: np.ndarray,
                 household: np.ndarray) -> None:
        self.columns = columns
        self.seconds = seconds  # local time, seconds since 1970-01-01
        self.household = household  # index into _Households
        n = len(seconds)
        self.kind = np.full(n, "original", dtype=object)
        self.duplicate_of = np.full(n, -1, dtype=np.int64)
        self._pending: list[_Rows] = []
        self._count = n

    def __len__(self) -> int:
        return self._count

    def append(self, source: np.ndarray, *, kind: str, duplicate_of: np.ndarray | None = None,
               **changes: np.ndarray | str | int) -> None:
        """Add copies of the base rows ``source``, with ``changes`` to their columns."""
        columns = {}
        for name in self.COLUMNS:
            columns[name] = self.columns[name][source].copy()
            if changes.get(name) is not None:
                columns[name][:] = changes[name]
        seconds = self.seconds[source].copy()
        if changes.get("seconds") is not None:
            seconds[:] = changes["seconds"]
        chunk = _Rows(columns, seconds, self.household[source])
        chunk.kind[:] = kind
        if duplicate_of is not None:
            chunk.duplicate_of[:] = duplicate_of
        self._pending.append(chunk)
        self._count += len(source)

    def flush(self) -> None:
        """Join the appended rows on to the columns."""
        if not self._pending:
            return
        parts = [self, *self._pending]
        self.columns = {name: np.concatenate([p.columns[name] for p in parts])
                        for name in self.COLUMNS}
        for name in ("seconds", "household", "kind", "duplicate_of"):
            setattr(self, name, np.concatenate([getattr(p, name) for p in parts]))
        self._pending = []


def _epoch_seconds(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _online_times(count: int, rng: np.random.Generator) -> np.ndarray:
    start, end = (_epoch_seconds(m) for m in ONLINE_WINDOW)
    return rng.integers(start, end + 1, count)


def _tablet_times(count: int, rng: np.random.Generator) -> np.ndarray:
    first = _epoch_seconds(datetime.combine(TABLET_DAYS[0], datetime.min.time()))
    days = (TABLET_DAYS[1] - TABLET_DAYS[0]).days + 1
    return (first + rng.integers(0, days, count) * 86_400
            + rng.integers(TABLET_HOURS[0] * 3600, TABLET_HOURS[1] * 3600, count))


def _records(base: _Households, rng: np.random.Generator) -> _Rows:
    n = len(base)
    online = rng.random(n) < base.share
    channel = np.where(online, np.array(ONLINE_CHANNELS, dtype=object)[
        rng.choice(len(ONLINE_CHANNELS), n, p=ONLINE_SPLIT)], "tablet").astype(object)
    names = [name for name, _ in TABLET_STATUS]
    status = np.where(online, "", np.array(names, dtype=object)[
        rng.choice(len(names), n, p=[share for _, share in TABLET_STATUS])]).astype(object)
    seconds = np.where(online, _online_times(n, rng), _tablet_times(n, rng))
    iins = _people_iins(base.size, rng)
    with_people = online | (status == "completed")
    # A household with people gives one record per person; a visit that met none, one record.
    per_household = np.where(with_people, base.size, 1)
    household = np.repeat(np.arange(n), per_household)
    offset = np.arange(len(household)) - np.repeat(np.cumsum(per_household) - per_household,
                                                   per_household)
    person = base.first_person[household] + offset
    people = with_people[household]
    ids = np.array([f"HH{h + 1:07d}" for h in range(n)], dtype=object)
    cd = base.cd_code[household]
    tablet = ~online[household]
    columns = {
        "iin": np.where(people, iins[person] if len(person) else person, "").astype(object),
        "building_id": base.building[household].astype(object),
        "dwelling": base.dwelling[household].astype(object),
        "household_id": ids[household],
        "persons": np.where(people, base.size[household].astype(str), "").astype(object),
        "channel": channel[household],
        "cd_code": np.where(tablet, cd, "").astype(object),
        "interviewer": np.where(tablet & (cd != ""), "I-" + cd.astype(str), "").astype(object),
        "status": status[household],
    }
    return _Rows(columns, seconds[household], household)


def _take_households(candidates: np.ndarray, weights: np.ndarray, target: int) -> np.ndarray:
    """The first ``candidates`` whose ``weights`` add up to at least ``target``."""
    if target <= 0 or len(candidates) == 0:
        return candidates[:0]
    reach = np.cumsum(weights[candidates])
    return candidates[: int(np.searchsorted(reach, target)) + 1]


def _inject(rows: _Rows, base: _Households, known: set[str], rng: np.random.Generator, *,
            rates: tuple[float, float, float, float]) -> None:
    duplicate_rate, unknown_rate, invalid_rate, conflict_rate = rates
    n_base = len(rows)
    channel = rows.columns["channel"]
    person_row = rows.columns["iin"] != ""
    online_row = np.isin(channel, ONLINE_CHANNELS)
    online_household = np.zeros(len(base), dtype=bool)
    online_household[rows.household[online_row]] = True
    rows_of = pd.Series(np.arange(n_base)).groupby(rows.household).indices
    used = np.zeros(len(base), dtype=bool)
    order = rng.permutation(np.flatnonzero(online_household))

    # Duplicates: whole online households submit again.
    target = round(duplicate_rate * int((person_row & online_row).sum()))
    chosen = _take_households(order, base.size, target)
    used[chosen] = True
    kinds = [name for name, _ in DUPLICATE_KINDS]
    shares = [share for _, share in DUPLICATE_KINDS]
    for h, kind in zip(chosen, rng.choice(len(kinds), len(chosen), p=shares), strict=True):
        source = np.asarray(rows_of[h])
        first = source[0]
        new_id = f"HD{len(rows):07d}"
        if kinds[kind] == "exact":
            later = rows.seconds[first] + int(rng.integers(60, 3 * 86_400))
            rows.append(source, kind="duplicate", duplicate_of=source,
                        seconds=min(later, _epoch_seconds(ONLINE_WINDOW[1])))
        elif kinds[kind] == "channel":
            others = [c for c in ONLINE_CHANNELS if c != channel[first]]
            rows.append(source, kind="duplicate", duplicate_of=source,
                        channel=others[int(rng.integers(len(others)))], household_id=new_id,
                        seconds=int(_online_times(1, rng)[0]))
        else:
            cd = str(base.cd_code[h])
            rows.append(source, kind="duplicate", duplicate_of=source, channel="tablet",
                        status="completed", cd_code=cd, interviewer=f"I-{cd}" if cd else "",
                        household_id=new_id, seconds=int(_tablet_times(1, rng)[0]))

    # Unknown addresses: whole online households give a building that is not in the plan.
    rest = order[~used[order]]
    chosen = _take_households(rest, base.size, round(unknown_rate * n_base))
    used[chosen] = True
    for h in chosen:
        fake = f"X{int(rng.integers(0, 10**7)):07d}"
        while fake in known:
            fake = f"X{int(rng.integers(0, 10**7)):07d}"
        source = np.asarray(rows_of[h])
        rows.columns["building_id"][source] = fake
        rows.kind[source] = "unknown_address"

    # Invalid IINs: single person records, mistyped so that the check catches it.
    free = np.flatnonzero(person_row & ~used[rows.household[:n_base]])
    count = min(round(invalid_rate * int(person_row.sum())), len(free))
    typo = rng.choice(free, count, replace=False) if count else free[:0]
    for position in typo:
        rows.columns["iin"][position] = _mistype(str(rows.columns["iin"][position]), rng)
        rows.kind[position] = "invalid_iin"

    # Conflicts: a person's IIN also appears in a household at another address.
    free = np.flatnonzero(person_row & ~used[rows.household[:n_base]]
                          & (rows.kind[:n_base] == "original"))
    count = min(round(conflict_rate * int(person_row.sum())), len(free))
    hosts = np.flatnonzero(~used[rows.household[:n_base]] & person_row)
    for position in (rng.choice(free, count, replace=False) if count else free[:0]):
        address = (rows.columns["building_id"][position], rows.columns["dwelling"][position])
        for _ in range(100):  # a host at another address; give up in a one-address plan
            host = int(hosts[rng.integers(len(hosts))])
            if (rows.columns["building_id"][host], rows.columns["dwelling"][host]) != address:
                rows.append(np.array([host]), kind="conflict", iin=rows.columns["iin"][position])
                rows.kind[position] = "conflict"
                break


def _mistype(iin: str, rng: np.random.Generator) -> str:
    """One changed digit that the check catches (3 in 4), or a digit dropped or added."""
    if rng.random() < 0.75:
        while True:
            position, digit = int(rng.integers(12)), str(int(rng.integers(10)))
            candidate = iin[:position] + digit + iin[position + 1:]
            if candidate != iin and check_iin(candidate) is not None:
                return candidate
    position = int(rng.integers(12))
    if rng.random() < 0.5:
        return iin[:position] + iin[position + 1:]
    return iin[:position] + str(int(rng.integers(10))) + iin[position:]


def _finish(rows: _Rows, rng: np.random.Generator, known: set[str]) -> GeneratedRecords:
    rows.flush()
    n = len(rows)
    order = np.lexsort((rng.random(n), rows.seconds))
    width = max(7, len(str(n)))
    ids = np.array([f"S2-{i + 1:0{width}d}" for i in range(n)], dtype=object)
    record_id = np.empty(n, dtype=object)
    record_id[order] = ids
    stamps = np.datetime_as_string(rows.seconds[order].astype("datetime64[s]"), unit="s")
    records = pd.DataFrame({"record_id": ids})
    for name in ALL_COLUMNS[1:]:
        if name == "submitted_at":
            records[name] = np.char.add(stamps.astype(str), UTC_OFFSET).astype(object)
        else:
            records[name] = rows.columns[name][order]
    duplicate_of = np.where(rows.duplicate_of >= 0,
                            record_id[np.maximum(rows.duplicate_of, 0)], "")
    truth = pd.DataFrame({"record_id": ids, "kind": rows.kind[order],
                          "duplicate_of": duplicate_of[order].astype(object)})
    for frame in (records, truth):
        for column in frame.columns:
            frame[column] = frame[column].astype(object)
    return GeneratedRecords(records=records, truth=truth, known_buildings=known)


def write_records(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write records as UTF-8 CSV or Parquet (by the suffix), all columns as text. In a
    CSV, a text cell that a spreadsheet would read as a formula gets a ``'`` in front
    (:mod:`districting.outputs.cells`); Parquet holds typed text and is written as is."""
    path = Path(path)
    cells = frame.astype(object)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = frame_csv(cells, as_text=True, lineterminator="\n")
        data = text.encode("utf-8")
    elif suffix in (".parquet", ".pq"):
        buffer = io.BytesIO()
        cells.astype(str).to_parquet(buffer, index=False)
        data = buffer.getvalue()
    else:
        raise DistrictingError(f"{path}: write records as .csv or .parquet, not '{suffix}'")
    write_bytes_atomic(path, data)
    return path


def score_dedup(result: DedupResult, truth: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Precision and recall of a deduplication against the generator's truth.

    For ``invalid_iin`` (quarantined for a missing or invalid IIN), ``unknown_address``
    (quarantined for an unknown address) and ``conflict`` (in conflicts), the predicted
    and true sets of records are compared. A record in duplicates counts as correct when
    the truth puts it and its ``duplicate_of`` in the same group (the original and its
    repeats): which member of a group is kept follows the dedup's precedence rule, not
    the generator's order. Each entry has ``true``, ``predicted``, ``correct``,
    ``precision`` and ``recall``.
    """
    kind = dict(zip(truth["record_id"], truth["kind"], strict=True))
    root = {rid: (of if k == "duplicate" else rid)
            for rid, k, of in zip(truth["record_id"], truth["kind"], truth["duplicate_of"],
                                  strict=True)}
    reasons = result.quarantined["reason"].astype(str)
    predicted = {
        "invalid_iin": set(result.quarantined["record_id"][
            reasons.str.startswith(("invalid IIN", "missing IIN"))]),
        "unknown_address": set(result.quarantined["record_id"][reasons == "unknown address"]),
        "conflict": set(result.conflicts["record_id"]),
    }
    scores: dict[str, dict[str, float]] = {}
    for name, guess in predicted.items():
        true = {rid for rid, k in kind.items() if k == name}
        scores[name] = _score(len(true), len(guess), len(true & guess))
    pairs = zip(result.duplicates["record_id"], result.duplicates["duplicate_of"], strict=True)
    correct = sum(1 for rid, of in pairs if rid in root and of in root and root[rid] == root[of])
    scores["duplicate"] = _score(sum(1 for k in kind.values() if k == "duplicate"),
                                 len(result.duplicates), correct)
    return scores


def _score(true: int, predicted: int, correct: int) -> dict[str, float]:
    return {"true": true, "predicted": predicted, "correct": correct,
            "precision": correct / predicted if predicted else 1.0,
            "recall": correct / true if true else 1.0}
