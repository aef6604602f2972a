"""Census hierarchy helpers: district counts, reading order and codes."""

from __future__ import annotations

import numpy as np
import pytest

from districting.hierarchy import choose_count, count_range, reading_order, settlement_seed


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
