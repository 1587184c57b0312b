"""Executing SIPP plans by their passing order: whatever the delays, every cart arrives, and
without the order the same plans can jam. Projecting routes with turns into expected plans."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import pytest

from maps import FacilityMap, load_map
from planners.graph import compile_map
from planners.precedence import Walk, passing_order, project
from planners.sipp import INF, Plan, near_elements, plan_prioritised
from sim.fleets import start_nodes

CLEAR = 1.0


def execute(plans: list[Plan], seed: int, ordered: bool = True, steps: int = 100_000) -> list[int]:
    """Run plans as the traffic manager does, with delays chosen at random: a cart claims its
    next node (if nobody holds it and, when `ordered`, it is the cart's turn there), drives,
    reaches it and lets go of the node behind. Any enabled step may happen next, which is
    every mix of late, early and stopped carts. Returns the carts that did not arrive."""
    rng = random.Random(seed)
    order = {node: deque(agents) for node, agents in passing_order(dict(enumerate(plans))).items()}
    at = [0] * len(plans)
    driving: set[int] = set()
    holder = {plan[0].node: a for a, plan in enumerate(plans)}
    for _ in range(steps):
        enabled: list[int] = []
        for a, plan in enumerate(plans):
            if a in driving:
                enabled.append(a)
            elif at[a] + 1 < len(plan):
                nxt = plan[at[a] + 1].node
                if nxt not in holder and (not ordered or order[nxt][0] == a):
                    enabled.append(a)
        if not enabled:
            break
        a = rng.choice(enabled)
        plan = plans[a]
        if a in driving:
            driving.discard(a)
            del holder[plan[at[a]].node]
            at[a] += 1
        else:
            nxt = plan[at[a] + 1].node
            holder[nxt] = a
            order[nxt].remove(a)  # its first entry: entries are in time order
            driving.add(a)
    return [a for a, plan in enumerate(plans) if at[a] != len(plan) - 1]


def warehouse_plans(fmap: FacilityMap, count: int) -> list[Plan]:
    graph = compile_map(fmap)
    near = near_elements(fmap, fmap.vehicle_types[0].radius)
    starts, goals = start_nodes(fmap, count), [s.node for s in fmap.stations][-count:]
    result = plan_prioritised(graph, near, CLEAR, starts, goals, no_through=fmap.no_through_nodes)
    assert result.solved
    return [p for p in result.plans if p is not None]


@pytest.fixture(scope="module")
def plans_60() -> list[Plan]:
    return warehouse_plans(load_map("warehouse"), 60)


@pytest.mark.parametrize("seed", range(5))
def test_ordered_execution_never_jams_whatever_the_delays(plans_60: list[Plan], seed: int) -> None:
    assert execute(plans_60, seed) == []


def test_the_order_is_what_prevents_jams(plans_60: list[Plan]) -> None:
    """The same plans run on claims alone, first come first served: some runs jam."""
    jammed = [seed for seed in range(5) if execute(plans_60, seed, ordered=False)]
    assert jammed, "claims alone never jammed: this instance does not test the passing order"


def seconds_of(fmap: FacilityMap) -> Callable[[str, str], float]:
    return compile_map(fmap).edge_seconds


def test_projection_of_a_lone_vehicle_is_its_free_drive(small_map: FacilityMap) -> None:
    seconds = seconds_of(small_map)
    plans = project({"a": Walk(("A1", "A2", "A3"), stay=20.0)}, {}, seconds, now=100.0)
    a = plans["a"]
    assert [v.node for v in a] == ["A1", "A2", "A3"]
    assert a[1].arrive == pytest.approx(100.0 + seconds("A1", "A2"))
    assert a[2].depart == pytest.approx(a[2].arrive + 20.0)


def test_projection_keeps_the_turn_order(small_map: FacilityMap) -> None:
    """`b` stands right before A3 but its turns there and at A4 come after `a`'s: it leaves
    only once `a` has passed A3, and enters A4 only once `a` has reached A5."""
    seconds = seconds_of(small_map)
    walks = {"a": Walk(("A1", "A2", "A3", "A4", "A5")), "b": Walk(("SD", "A3", "A4"))}
    plans = project(walks, {"A3": ["a", "b"], "A4": ["a", "b"]}, seconds, now=0.0)
    a, b = plans["a"], plans["b"]
    assert [v.node for v in b] == ["SD", "A3", "A4"]
    assert b[0].depart >= a[3].arrive, "A3 stays held until `a` has reached A4"
    assert b[1].depart >= a[4].arrive
    assert a[-1].depart == INF and b[-1].depart == INF
    alone = project({"b": walks["b"]}, {}, seconds, now=0.0)["b"]
    assert alone[0].depart == 0.0, "without turns it would have gone at once"


def test_projection_of_a_vehicle_behind_one_that_cannot_move(small_map: FacilityMap) -> None:
    seconds = seconds_of(small_map)
    walks = {"stuck": Walk(("A3", "A4"), ready=INF), "behind": Walk(("A2", "A3", "A4"))}
    plans = project(walks, {}, seconds, now=0.0)
    assert [v.node for v in plans["stuck"]] == ["A3"]
    assert [v.node for v in plans["behind"]] == ["A2"] and plans["behind"][0].depart == INF
