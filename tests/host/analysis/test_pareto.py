"""The Pareto front on (energy, p99): by hand, and its defining property on many seeded random sets."""
from __future__ import annotations

import random

import pytest

from orchestrator.analysis.pareto import Point, dominated_by, dominates, pareto_front


def names(points):
    return [p.runtime for p in points]


def test_front_by_hand():
    a, b, c, d = Point("a", 1, 30), Point("b", 2, 20), Point("c", 3, 10), Point("d", 3.5, 25)
    assert names(pareto_front([d, c, b, a])) == ["a", "b", "c"]  # by increasing energy
    assert dominated_by(d, [a, b, c, d]) == ["b", "c"] and dominated_by(a, [a, b, c, d]) == []


def test_equal_points_both_stay_and_equal_on_one_axis_is_dominated():
    a, twin = Point("a", 1, 10), Point("twin", 1, 10)
    slower = Point("slower", 1, 11)
    assert names(pareto_front([a, twin, slower])) == ["a", "twin"]
    assert not dominates(a, twin) and dominates(a, slower)


@pytest.mark.parametrize("seed", range(200))
def test_front_is_exactly_the_undominated_points(seed):
    rng = random.Random(seed)  # small integer grids: ties and equal points are common
    pts = [Point(f"r{i}", float(rng.randint(0, 8)), float(rng.randint(0, 8))) for i in range(rng.randint(1, 12))]
    front = pareto_front(pts)
    assert front, "a finite set always has a non-dominated point"
    for p in pts:
        assert (p in front) == (not any(dominates(q, p) for q in pts))
    # Along the front, energy rises and latency falls (never both rise).
    for left, right in zip(front, front[1:]):
        assert left.x <= right.x and (left.y >= right.y)
