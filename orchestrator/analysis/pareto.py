"""The Pareto set of runtimes on two lower-is-better figures (energy per inference, p99 latency).

A runtime is on the front when no other runtime is at least as good on both figures and better on one. Runtimes
with identical figures do not dominate each other: both stay. The figures are the cells' medians over runs, so the
front is a statement about medians; the caller shows the intervals beside it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    runtime: str
    x: float  # energy per inference (J)
    y: float  # p99 latency (ms)


def dominates(a: Point, b: Point) -> bool:
    return a.x <= b.x and a.y <= b.y and (a.x < b.x or a.y < b.y)


def pareto_front(points: list[Point]) -> list[Point]:
    """The non-dominated points, in order of increasing x (then y, then name): the front as it is drawn."""
    front = [p for p in points if not any(dominates(q, p) for q in points if q is not p)]
    return sorted(front, key=lambda p: (p.x, p.y, p.runtime))


def dominated_by(point: Point, points: list[Point]) -> list[str]:
    """The runtimes that dominate `point` (empty when it is on the front)."""
    return sorted(q.runtime for q in points if q is not point and dominates(q, point))
