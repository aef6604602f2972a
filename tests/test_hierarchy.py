"""Census hierarchy helpers: district counts, reading order, codes, walking-tour repair
and instructor districts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from districting.config import Config, InstructorNorms
from districting.hierarchy import (
    _instructor_districts,
    _repair_spans,
    choose_count,
    count_range,
    reading_order,
    repair_walks,
    settlement_seed,
)
from districting.partition import adjacency_from_edges


@pytest.mark.parametrize(("total", "target", "expected"), [
    (1000.0, 100.0, (10, True)),
    (1049.0, 100.0, (10, True)),
    (95.0, 100.0, (1, True)),
    (50.0, 100.0, (1, False)),     # below the floor: one CD, flagged
    (150.0, 100.0, (2, False)),    # 1.5 targets fit neither 1 nor 2 CDs within ±10%
])
def test_choose_count(total: float, target: float, expected: tuple[int, bool]) -> None:
    assert choose_count(total, target, 0.9 * target, 1.1 * target) == expected


def test_count_range_is_the_feasible_interval() -> None:
    assert count_range(1000.0, 90.0, 110.0) == (10, 11)


def test_reading_order_goes_north_to_south_then_west_to_east() -> None:
    xy = np.array([[0.0, 0.0], [500.0, 1000.0], [0.0, 1000.0], [500.0, 0.0]])
    assert reading_order(xy).tolist() == [2, 1, 0, 3]


def test_settlement_seed_is_stable_and_distinct() -> None:
    assert settlement_seed(2021, "431010000") == settlement_seed(2021, "431010000")
    assert settlement_seed(2021, "431010000") != settlement_seed(2021, "431030100")


def path_graph(n: int) -> sp.csr_matrix:
    return adjacency_from_edges(n, np.array([(i, i + 1) for i in range(n - 1)]))


def test_walk_repair_moves_a_unit_when_the_tour_breaks_the_ceiling() -> None:
    adj = path_graph(6)
    labels = np.array([0, 0, 0, 1, 1, 1])
    base = np.array([45.0, 45, 25, 30, 20, 20])

    def walk(members: np.ndarray) -> tuple[float, np.ndarray]:
        # Walking adds 5 minutes per leg between the CD's units, shared out evenly.
        legs = 5.0 * (len(members) - 1)
        return legs * 10, np.full(len(members), legs / len(members))

    walk_min, tour_m = np.zeros(6), np.zeros(2)
    for c in range(2):
        members = np.flatnonzero(labels == c)
        tour_m[c], walk_min[members] = walk(members)
    assert (base + walk_min)[labels == 0].sum() == pytest.approx(125.0)  # above 115
    moves = repair_walks(adj, labels, base, walk_min, tour_m, walk, floor=90, ceiling=115)
    assert moves == 1
    assert labels.tolist() == [0, 0, 1, 1, 1, 1]
    totals = np.bincount(labels, weights=base + walk_min)
    assert totals.tolist() == pytest.approx([95.0, 110.0])
    assert tour_m.tolist() == [50.0, 150.0]


def test_walk_repair_keeps_the_source_connected() -> None:
    # The middle unit of CD 0 is the only one that could go, but it would cut CD 0.
    adj = path_graph(4)
    labels = np.array([0, 0, 0, 1])
    base = np.array([10.0, 200.0, 10.0, 10.0])
    walk_min, tour_m = np.zeros(4), np.zeros(2)

    def walk(members: np.ndarray) -> tuple[float, np.ndarray]:
        return 0.0, np.zeros(len(members))

    assert repair_walks(adj, labels, base, walk_min, tour_m, walk, floor=0,
                         ceiling=100) == 0
    assert labels.tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("seed", range(3))
def test_instructor_districts_balance_workload_within_the_span(seed: int) -> None:
    rows, cols = 4, 5
    edges = [(i, i + 1) for i in range(rows * cols) if (i + 1) % cols]
    edges += [(i, i + cols) for i in range(rows * cols - cols)]
    adj = adjacency_from_edges(rows * cols, np.array(edges))
    workload = np.random.default_rng(seed).uniform(3200, 5800, rows * cols)
    config = Config(instructor=InstructorNorms(span_min=5, span_max=8, span_target=6.5,
                                               tolerance=0.15))
    labels, exceptions, timed_out = _instructor_districts(adj, workload, config=config,
                                                          seed=seed)
    assert not timed_out
    k = int(labels.max()) + 1
    assert k == 3 and exceptions == [""] * k
    mean = workload.sum() / k
    totals = np.bincount(labels, weights=workload)
    spans = np.bincount(labels)
    assert ((totals >= 0.85 * mean - 1e-6) & (totals <= 1.15 * mean + 1e-6)).all()
    assert ((spans >= 5) & (spans <= 8)).all()
    for part in range(k):
        members = labels == part
        assert connected_components(adj[members][:, members], directed=False)[0] == 1


def test_span_repair_moves_cds_into_the_range() -> None:
    adj = path_graph(10)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    _repair_spans(adj, labels, np.ones(10), span=(4, 6), bounds=(0.0, 100.0))
    spans = np.bincount(labels)
    assert ((spans >= 4) & (spans <= 6)).all()
    assert labels.tolist() == sorted(labels.tolist())  # both stay contiguous on the path
