"""The PDPTW model and its validator: plans on Li & Lim instances are valid, the validator
catches a hand-made fault of each kind, and route elimination gets to fewer vehicles."""

from __future__ import annotations

from pathlib import Path

import pytest

from planners.budget import TimeBudget
from planners.pdptw import (
    PdptwInstance,
    SolveSettings,
    eliminate_routes,
    parse_li_lim,
    solve_pdptw,
    validate_pdptw,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "pdptw"


@pytest.fixture(scope="module")
def lr201() -> PdptwInstance:
    path = DATA / "li_lim_100" / "lr201.txt"
    if not path.exists():
        pytest.fail(f"Li & Lim data not found at {path}")
    return parse_li_lim(path.read_text(), "lr201")


def test_instances_parse_with_their_pairs(lr201: PdptwInstance) -> None:
    assert lr201.capacity == 1000 and lr201.vehicles == 25
    assert len(lr201.requests) * 2 == len(lr201.stops) - 1
    for pickup, delivery in lr201.requests:
        assert lr201.stops[delivery].pickup_of == pickup and lr201.stops[pickup].demand == -lr201.stops[delivery].demand


def test_plans_are_valid_and_route_elimination_merges_a_needless_route(lr201: PdptwInstance) -> None:
    """Valid plans with and without route elimination; given a plan with one route needlessly
    split in two, elimination ends with fewer routes, and a valid plan. (How many vehicles it
    saves on a real search depends on the time it gets: bench/pdptw.py measures it; on lr201,
    6 without and the best-known 4 with, in 10 s.)"""
    plain = solve_pdptw(lr201, SolveSettings(time_limit_s=1.0, eliminate_routes=False))
    assert plain is not None and validate_pdptw(lr201, plain.routes) == []
    full = solve_pdptw(lr201, SolveSettings(time_limit_s=2.0))
    assert full is not None and validate_pdptw(lr201, full.routes) == []
    longest = max(plain.routes, key=len)
    cut = next(k for k in range(2, len(longest), 2) if _closed(lr201, longest[:k]))
    split = (*(r for r in plain.routes if r is not longest), longest[:cut], longest[cut:])
    assert validate_pdptw(lr201, split) == [] and len(split) == plain.vehicles + 1
    settings = SolveSettings(time_limit_s=8.0)  # up to three tries of 2 s; it takes one, usually
    merged = eliminate_routes(lr201, split, settings, TimeBudget(8.0))
    assert validate_pdptw(lr201, merged) == [] and len(merged) < len(split)


def _closed(instance: PdptwInstance, part: tuple[int, ...]) -> bool:
    """Every pickup in `part` has its delivery in it too (the route can be cut after it)."""
    return all(
        (s.delivery_of in part) if s.delivery_of else (s.pickup_of in part) for s in (instance.stops[i] for i in part)
    )


def test_the_validator_catches_each_kind_of_fault(lr201: PdptwInstance) -> None:
    plan = solve_pdptw(lr201, SolveSettings(time_limit_s=1.0, eliminate_routes=False))
    assert plan is not None
    routes = [list(r) for r in plan.routes]
    pickup, delivery = lr201.requests[0]
    home = next(k for k, r in enumerate(routes) if pickup in r)

    def problems_of(changed: list[list[int]]) -> str:
        return " | ".join(validate_pdptw(lr201, tuple(tuple(r) for r in changed)))

    swapped = [list(r) for r in routes]
    i, j = swapped[home].index(pickup), swapped[home].index(delivery)
    swapped[home][i], swapped[home][j] = delivery, pickup
    assert "without its" in problems_of(swapped)
    dropped = [[s for s in r if s not in (pickup, delivery)] for r in routes]
    assert f"never visited: [{min(pickup, delivery)}" in problems_of(dropped)
    twice = [list(r) for r in routes] + [[pickup, delivery]]
    assert "visited twice" in problems_of(twice)
    split = [[s for s in r if s != delivery] for r in routes] + [[delivery]]
    assert "without its pickup" in problems_of(split)
    late = [list(reversed(r)) for r in routes]
    assert "after its window ends" in problems_of(late) or "without its" in problems_of(late)
    heavy = PdptwInstance(lr201.name, lr201.vehicles, 1, lr201.stops)
    assert "capacity 1" in " | ".join(validate_pdptw(heavy, plan.routes))
    few = PdptwInstance(lr201.name, 1, lr201.capacity, lr201.stops)
    assert "vehicles used, the instance has 1" in " | ".join(validate_pdptw(few, plan.routes))


def test_an_unknown_elimination_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="elimination must be 'ruin' or 'ortools', not 'tabu'"):
        SolveSettings(elimination="tabu")
