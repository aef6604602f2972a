"""Registration points: the capacitated p-median against brute force on small CD graphs."""

from __future__ import annotations

import itertools

import numpy as np
import pulp
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from districting.errors import PartitionError
from districting.partition import adjacency_from_edges
from districting.registration import (
    PointPlan,
    capacitated_p_median,
    point_capacity,
    point_count,
)


def grid(rows: int, cols: int) -> tuple[sp.csr_matrix, np.ndarray]:
    xy = np.array([(c, r) for r in range(rows) for c in range(cols)], dtype=float)
    edges = [(i, i + 1) for i in range(rows * cols) if (i + 1) % cols]
    edges += [(i, i + cols) for i in range(rows * cols - cols)]
    return adjacency_from_edges(rows * cols, np.array(edges)), xy


def brute_force(cost: np.ndarray, demand: np.ndarray, adj: sp.csr_matrix, home: np.ndarray,
                *, p: int, capacity: float) -> float:
    """The best objective over every choice of points and assignment of CDs."""
    n, m = cost.shape
    best = np.inf
    for chosen in itertools.combinations(range(m), p):
        for assignment in itertools.product(range(p), repeat=n):
            a = np.array(assignment)
            if any(a[home[j]] != t for t, j in enumerate(chosen)):
                continue
            if any(demand[a == t].sum() > capacity for t in range(p)):
                continue
            if any(connected_components(adj[a == t][:, a == t], directed=False)[0] != 1
                   for t in range(p)):
                continue
            best = min(best, float(sum(cost[i, chosen[a[i]]] for i in range(n))))
    return best


def check_plan(plan: PointPlan, cost: np.ndarray, demand: np.ndarray, adj: sp.csr_matrix,
               home: np.ndarray, *, p: int, capacity: float) -> None:
    assert len(plan.chosen) == p and len(plan.assignment) == cost.shape[0]
    for t, j in enumerate(plan.chosen):
        members = plan.assignment == t
        assert members[home[j]], "a point serves its own CD"
        assert demand[members].sum() <= capacity + 1e-6
        assert connected_components(adj[members][:, members], directed=False)[0] == 1
    assert plan.objective == pytest.approx(
        sum(cost[i, plan.chosen[plan.assignment[i]]] for i in range(cost.shape[0])))


@pytest.mark.parametrize("seed", range(4))
def test_p_median_is_optimal_against_brute_force(seed: int) -> None:
    adj, xy = grid(2, 4)
    rng = np.random.default_rng(seed)
    demand = rng.integers(50, 150, len(xy)).astype(float)
    home = np.array([0, 3, 5, 6])
    cost = demand[:, None] * np.abs(xy[:, None, :] - xy[home][None, :, :]).sum(axis=2)
    capacity = 0.6 * demand.sum()
    plan = capacitated_p_median(cost, demand, p=2, capacity=capacity, adjacency=adj,
                                home=home, time_limit=30)
    check_plan(plan, cost, demand, adj, home, p=2, capacity=capacity)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(
        brute_force(cost, demand, adj, home, p=2, capacity=capacity))


def split_path() -> tuple[sp.csr_matrix, np.ndarray]:
    """A path 0-1-2-3-4 with points at both ends. Alone, CD 1 would go to the far point
    and CD 2 to the near one, cutting both districts in two."""
    adj = adjacency_from_edges(5, np.array([(0, 1), (1, 2), (2, 3), (3, 4)]))
    cost = np.array([[0, 50], [30, 0], [0, 30], [50, 20], [50, 0]], dtype=float)
    return adj, cost


def test_districts_stay_connected_where_the_cheapest_assignment_is_not() -> None:
    adj, cost = split_path()
    demand = np.ones(5)
    home = np.array([0, 4])
    plan = capacitated_p_median(cost, demand, p=2, capacity=5, adjacency=adj, home=home,
                                time_limit=30)
    check_plan(plan, cost, demand, adj, home, p=2, capacity=5)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(brute_force(cost, demand, adj, home, p=2,
                                                       capacity=5))


def test_capacity_moves_cds_to_the_farther_point() -> None:
    adj, _ = grid(1, 6)
    demand = np.array([10.0, 10, 10, 10, 10, 10])
    home = np.array([0, 5])
    cost = demand[:, None] * np.array([[0, 5], [1, 0.5], [2, 0.4], [3, 0.3], [4, 0.2], [5, 0]])
    free = capacitated_p_median(cost, demand, p=2, capacity=60, adjacency=adj, home=home,
                                time_limit=30)
    tight = capacitated_p_median(cost, demand, p=2, capacity=30, adjacency=adj, home=home,
                                 time_limit=30)
    assert np.bincount(free.assignment).tolist() == [1, 5]
    assert np.bincount(tight.assignment).tolist() == [3, 3]
    assert tight.objective > free.objective


def test_capacity_that_no_assignment_meets_is_named() -> None:
    adj, _ = grid(1, 4)
    with pytest.raises(PartitionError, match="capacity_share"):
        capacitated_p_median(np.ones((4, 2)), np.full(4, 10.0), p=2, capacity=15,
                             adjacency=adj, home=np.array([0, 3]), time_limit=30)


def test_point_count_and_capacity() -> None:
    assert point_count(69_019, points=None, residents_per_point=12_000) == 6
    assert point_count(2_500, points=None, residents_per_point=12_000) == 1
    assert point_count(2_500, points=3, residents_per_point=12_000) == 3
    assert point_capacity(np.array([100.0, 200.0, 300.0]), 2, share=1.5) == 450.0
    assert point_capacity(np.array([100.0, 900.0]), 2, share=1.0) == 900.0


def cycle_instance() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """A cycle of 8 CDs with points at CDs 0 and 1, where CD 2 is so populous that the
    only plan within capacity is {1, 2} and {0, 7, 6, 5, 4, 3}: connected, but CD 3 has
    no neighbour nearer CD 0 in its RD, so no RD growing outward from its point fits."""
    adj = adjacency_from_edges(8, np.array([(i, (i + 1) % 8) for i in range(8)]))
    demand = np.array([1.0, 1, 5, 1, 1, 1, 1, 1])
    home = np.array([0, 1])
    cost = np.ones((8, 2))
    return adj, demand, home, cost


def test_the_exact_model_finds_connected_plans_the_star_model_cannot() -> None:
    adj, demand, home, cost = cycle_instance()
    plan = capacitated_p_median(cost, demand, p=2, capacity=6, adjacency=adj, home=home,
                                time_limit=30)
    assert plan.status == "optimal"
    check_plan(plan, cost, demand, adj, home, p=2, capacity=6)
    assert sorted(np.flatnonzero(plan.assignment == plan.assignment[1]).tolist()) == [1, 2]


def test_pieces_left_after_the_last_round_join_a_neighbour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import districting.registration as registration

    # One round, and a first solution cut apart (CD 1 prefers the far point, CD 2 the
    # near one); the star model is made infeasible to reach the last fallback.
    monkeypatch.setattr(registration, "MAX_ROUNDS", 1)
    monkeypatch.setattr(registration, "_star_rows",
                        lambda model, adjacency, steps: model.problem.addConstraint(
                            pulp.lpSum(model.y.values()) >= len(model.y) + 1))
    adj, cost = split_path()
    plan = capacitated_p_median(cost, np.ones(5), p=2, capacity=5, adjacency=adj,
                                home=np.array([0, 4]), time_limit=30)
    assert plan.status == "repaired"
    check_plan(plan, cost, np.ones(5), adj, np.array([0, 4]), p=2, capacity=5)


def test_star_plan_is_kept_when_the_rounds_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import districting.registration as registration

    monkeypatch.setattr(registration, "MAX_ROUNDS", 1)
    adj, cost = split_path()
    plan = capacitated_p_median(cost, np.ones(5), p=2, capacity=5, adjacency=adj,
                                home=np.array([0, 4]), time_limit=30)
    assert plan.status == "star"
    check_plan(plan, cost, np.ones(5), adj, np.array([0, 4]), p=2, capacity=5)


def test_two_candidates_in_one_cd_are_never_both_chosen() -> None:
    adj, _ = grid(1, 4)
    cost = np.array([[0.0, 0, 9], [1, 1, 8], [2, 2, 1], [3, 3, 0]])
    home = np.array([0, 0, 3])
    plan = capacitated_p_median(cost, np.ones(4), p=2, capacity=4, adjacency=adj, home=home,
                                time_limit=30)
    assert len({int(home[j]) for j in plan.chosen}) == 2
    check_plan(plan, cost, np.ones(4), adj, home, p=2, capacity=4)
    with pytest.raises(PartitionError, match="candidates in 2 CD"):
        capacitated_p_median(cost, np.ones(4), p=3, capacity=4, adjacency=adj, home=home,
                             time_limit=30)


def test_a_large_settlement_without_a_star_plan_relaxes_the_capacity_quickly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import districting.registration as registration

    # The cycle where only the exact model meets the capacity: above EXACT_CDS CDs the
    # exact model is not tried, and the star plan at a raised capacity is kept.
    adj, demand, home, cost = cycle_instance()
    monkeypatch.setattr(registration, "EXACT_CDS", 4)
    plan = capacitated_p_median(cost, demand, p=2, capacity=6, adjacency=adj, home=home,
                                time_limit=30)
    assert plan.status == "relaxed" and plan.rounds == 0
    assert plan.capacity == 6 * registration.RELAXED_CAPACITY[0]
    check_plan(plan, cost, demand, adj, home, p=2, capacity=plan.capacity)
    assert max(demand[plan.assignment == t].sum() for t in range(2)) > 6  # it was needed


def test_rounds_stop_when_the_time_limit_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    import districting.registration as registration

    # Every round ends past the time limit: without a star plan, the first round's
    # pieces are joined to a neighbour at once instead of going on for MAX_ROUNDS.
    monkeypatch.setattr(registration, "_star_rows",
                        lambda model, adjacency, steps: model.problem.addConstraint(
                            pulp.lpSum(model.y.values()) >= len(model.y) + 1))
    clock = iter(float(t) for t in range(0, 1000, 50))
    monkeypatch.setattr(registration.time, "monotonic", lambda: next(clock))
    adj, cost = split_path()
    plan = capacitated_p_median(cost, np.ones(5), p=2, capacity=5, adjacency=adj,
                                home=np.array([0, 4]), time_limit=30)
    assert plan.status == "repaired" and plan.rounds == 1
    check_plan(plan, cost, np.ones(5), adj, np.array([0, 4]), p=2, capacity=5)


def _branching_instance() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray, float]:
    """An 8 × 8 grid of CDs, 12 candidates, 4 points: its exact rounds need branching."""
    rng = np.random.default_rng(1)
    adj, xy = grid(8, 8)
    home = rng.choice(64, size=12, replace=False)
    demand = rng.integers(50, 150, size=64).astype(float)
    distance = np.linalg.norm(xy[:, None, :] - xy[home][None, :, :], axis=2)
    cost = distance * demand[:, None] * rng.uniform(0.5, 1.5, size=(64, 12))
    return adj, demand, home, cost, demand.sum() / 4 * 1.1


def test_a_node_budget_not_the_clock_ends_the_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    import districting.registration as registration

    adj, demand, home, cost, capacity = _branching_instance()
    solve = dict(p=4, capacity=capacity, adjacency=adj, home=home, time_limit=60)
    full = capacitated_p_median(cost, demand, **solve)
    assert full.status == "optimal"
    # With one node for all rounds, HiGHS stops on its node limit (a status pulp does not
    # know): the star plan is kept, the same each time, whatever the machine's speed.
    monkeypatch.setattr(registration, "ROUND_NODES", 1)
    first = capacitated_p_median(cost, demand, **solve)
    again = capacitated_p_median(cost, demand, **solve)
    assert first.status == "star"
    assert first.chosen == again.chosen and (first.assignment == again.assignment).all()
    check_plan(first, cost, demand, adj, home, p=4, capacity=capacity)
    assert first.objective >= full.objective - 1e-6
