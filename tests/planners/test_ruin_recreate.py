"""Ruin and recreate on PDPTW plans: the vectorised insertion finds exactly the cheapest
feasible position that trying every position finds, and the search returns valid plans that
are shorter, with no more routes, deterministically for a seed and an iteration count."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from planners.pdptw import PdptwInstance, parse_li_lim, route_distance, validate_pdptw
from planners.ruin_recreate import RuinSettings, _best_insertion, _inserted, _Instance, _Route, fewer_routes, improve

DATA = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "pdptw" / "li_lim_100"


def _load(name: str) -> PdptwInstance:
    path = DATA / f"{name}.txt"
    if not path.exists():
        pytest.fail(f"Li & Lim data not found at {path}")
    return parse_li_lim(path.read_text(), name)


def _feasible(instance: PdptwInstance, route: tuple[int, ...]) -> bool:
    """The validator's verdict on one route, leaving out that other requests are unserved."""
    return not [p for p in validate_pdptw(instance, (route,)) if "never visited" not in p]


def _singles(instance: PdptwInstance) -> tuple[tuple[int, ...], ...]:
    """One route per request: feasible on Li & Lim instances, and as long as a plan gets."""
    return tuple((p, d) for p, d in instance.requests)


@pytest.mark.parametrize("name", ["lc101", "lr201", "lrc105"])
def test_the_cheapest_insertion_is_the_one_trying_every_position_finds(name: str) -> None:
    """Routes grown request by request (by the pickup's window opening, each request into the
    first route that takes it, else a new one); at each try every pickup and delivery position
    pair is checked by the validator; the vectorised search must name a position of the same
    extra distance, feasible, or none exactly when none is."""
    instance = _load(name)
    inst, rng = _Instance(instance), random.Random(7)
    gen = np.random.default_rng(7)
    requests = sorted(instance.requests, key=lambda r: (instance.stops[r[0]].earliest, rng.random()))
    routes: list[tuple[int, ...]] = []
    fitted = refused = 0
    for pickup, delivery in requests[:40]:
        for k, route in enumerate(routes):
            fast = _best_insertion(inst, _Route(inst, list(route)), pickup, delivery, gen, blink=0.0)
            base = route_distance(instance, route)
            tried = []
            for i, j in itertools.combinations_with_replacement(range(len(route) + 1), 2):
                candidate = tuple(_inserted(list(route), pickup, delivery, i, j))
                if _feasible(instance, candidate):
                    tried.append(route_distance(instance, candidate) - base)
            if not tried:
                assert fast is None, f"{name}: {pickup}-{delivery} fits nowhere in {route}, yet {fast} was offered"
                refused += 1
                continue
            assert fast is not None, f"{name}: {pickup}-{delivery} fits ({min(tried):.2f}), none was found"
            cost, i, j = fast
            chosen = tuple(_inserted(list(route), pickup, delivery, i, j))
            assert _feasible(instance, chosen)
            assert cost == pytest.approx(min(tried), abs=1e-6)
            assert route_distance(instance, chosen) - base == pytest.approx(cost, abs=1e-6)
            routes[k] = chosen
            fitted += 1
            break
        else:
            routes.append((pickup, delivery))
    # Both verdicts were really compared, many times: positions found and refusals.
    assert fitted >= 15 and refused >= 15, (fitted, refused)


def test_the_search_merges_and_shortens_routes_and_repeats_itself() -> None:
    """From one route per request (53 routes) on lc101, 50 ruins: a valid plan with the best
    known number of routes (10) and within 1 % of its distance; the same seed gives the same plan. (bench/pdptw.py
    measures what it does on the plans the solver hands it.)"""
    instance = _load("lc101")
    start = _singles(instance)
    assert validate_pdptw(PdptwInstance("lc101", len(start), instance.capacity, instance.stops), start) == []
    settings = RuinSettings()
    plan = improve(instance, start, lambda: float("inf"), settings, seed=3, iterations=50)
    assert validate_pdptw(instance, plan) == []
    assert len(plan) == 10  # the best known
    assert sum(route_distance(instance, r) for r in plan) < 1.01 * 828.94  # the best known distance
    again = improve(instance, start, lambda: float("inf"), settings, seed=3, iterations=50)
    assert again == plan


def test_the_search_never_returns_more_routes_or_a_longer_plan() -> None:
    """A plan that is already good (few routes) comes back no worse, whatever the ruins do."""
    instance = _load("lr201")
    seeded = improve(instance, _singles(instance), lambda: float("inf"), seed=1, iterations=300)
    again = improve(instance, seeded, lambda: float("inf"), seed=2, iterations=100)
    assert validate_pdptw(instance, again) == []
    assert len(again) <= len(seeded)
    assert sum(route_distance(instance, r) for r in again) <= sum(route_distance(instance, r) for r in seeded) + 1e-6


@pytest.mark.parametrize(("name", "ruins", "best_known"), [("lc101", 80, 10), ("lr202", 200, 3)])
def test_fleet_minimisation_reaches_the_best_known_vehicle_count(name: str, ruins: int, best_known: int) -> None:
    """From one route per request (50+ routes), a few hundred ruins with a pool of requests
    left out: a valid plan with the best-known number of routes, on a clustered instance with
    short routes and on a random one whose 3 routes carry 30+ requests each; deterministic."""
    instance = _load(name)
    plan = fewer_routes(instance, _singles(instance), lambda: float("inf"), seed=3, iterations=ruins)
    assert validate_pdptw(instance, plan) == []
    assert len(plan) == best_known
    assert fewer_routes(instance, _singles(instance), lambda: float("inf"), seed=3, iterations=ruins) == plan


def test_fleet_minimisation_stops_at_the_deadline_with_the_plan_it_had() -> None:
    """No time at all: the plan handed in comes back as it was, not a plan with requests missing."""
    instance = _load("lc101")
    start = _singles(instance)
    assert fewer_routes(instance, start, lambda: 0.0) == start
