"""SIPP with a reservation table: the validator catches each kind of conflict; prioritised plans
on the bundled maps pass it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from maps import FacilityMap, load_map
from maps.schema import MapFile, map_from_wire
from planners.graph import compile_map
from planners.sipp import INF, ReservationTable, Visit, near_elements, plan_prioritised, sipp, validate_plans
from sim.fleets import start_nodes

CLEAR = 1.0


def check(fmap: FacilityMap, starts: list[str], goals: list[str], plans: list[list[Visit]]) -> str:
    graph = compile_map(fmap)
    near = near_elements(fmap, fmap.vehicle_types[0].radius)
    return "\n".join(validate_plans(graph, near, CLEAR, starts, goals, plans))


def test_validator_catches_each_kind_of_conflict(small_map: FacilityMap) -> None:
    t = compile_map(small_map).edge_seconds("A1", "A2")  # 6 m at 1.5 m/s: 4 s
    alone = [Visit("A1", 0, 0), Visit("A2", t, INF)]
    assert check(small_map, ["A1"], ["A2"], [alone]) == ""
    assert "faster than the lane allows" in check(small_map, ["A1"], ["A2"], [[Visit("A1", 0, 0), Visit("A2", 1, INF)]])
    assert "no lane from A2 to A1" in check(small_map, ["A2"], ["A1"], [[Visit("A2", 0, 0), Visit("A1", 9, INF)]])
    assert "starts at A1, not A8" in check(small_map, ["A8"], ["A2"], [alone])
    assert "does not stay at its goal A3" in check(small_map, ["A1"], ["A3"], [alone])
    # Two stay on A2 at once.
    parked = [Visit("A2", 0, INF)]
    assert "vertex conflict between vehicles 0 and 1 at A2" in check(
        small_map, ["A1", "A2"], ["A2", "A2"], [alone, parked]
    )
    # A second cart follows onto A1->A2 two seconds behind the first (from the bay SA... no: from PA2 over A1).
    behind = [Visit("PA2", 0, 0), Visit("A1", 2.0, 2.0), Visit("A2", 2.0 + t, INF)]
    first = [Visit("A1", 0, 0), Visit("A2", t, t), Visit("A3", 2 * t, INF)]
    assert "following conflict between vehicles 0 and 1 at A1-A2" in check(
        small_map, ["A1", "PA2"], ["A3", "A2"], [first, [Visit("A1", 0.5, 0.5), *behind[2:]]]
    )
    # Head-on on the two-way spur A2-D1.
    spur = compile_map(small_map).edge_seconds("A2", "D1")
    out = [Visit("A2", 0, 0), Visit("D1", spur, INF)]
    back = [Visit("D1", 0, 1), Visit("A2", 1 + spur, INF)]
    assert "swap conflict between vehicles 0 and 1 at A2-D1" in check(
        small_map, ["A2", "D1"], ["D1", "A2"], [out, back]
    )


def parallel_lanes(gap: float) -> FacilityMap:
    """Lane W1 -> E1 -> F1, and beside it, `gap` metres off and sharing no node, W2 -> E2, which
    carts reach from S2, 5 m further out."""
    cart = {
        "id": "cart",
        "length": 1.2,
        "width": 0.8,
        "max_speed": 1.0,
        "acceleration": 0.5,
        "battery_capacity_wh": 1000,
        "consumption_wh_per_m": 0.1,
        "load_capacity": 1,
        "load_types": ["rack"],
    }
    spots = {"W1": (0, 0), "E1": (10, 0), "F1": (20, 0), "S2": (0, gap + 5), "W2": (0, gap), "E2": (10, gap)}
    data: dict[str, Any] = {
        "name": "parallel",
        "vehicle_types": [cart],
        "nodes": [{"id": k, "x": x, "y": y} for k, (x, y) in spots.items()],
        "lanes": [
            {"from": a, "to": b, "max_speed": 1.0} for a, b in (("W1", "E1"), ("E1", "F1"), ("S2", "W2"), ("W2", "E2"))
        ],
    }
    return map_from_wire(MapFile.model_validate(data))


def test_footprint_conflict_between_lanes_too_close() -> None:
    """1 m apart, two carts of 1.44 m diameter side by side touch; 2 m apart they do not. The
    planner makes the second cart wait at S2 until the first has passed."""
    starts, goals = ["W1", "S2"], ["F1", "E2"]
    plans = [
        [Visit("W1", 0, 0), Visit("E1", 10, 10), Visit("F1", 20, INF)],
        [Visit("S2", 0, 0), Visit("W2", 5, 5), Visit("E2", 15, INF)],
    ]
    assert "footprint conflict between vehicles 0 and 1" in check(parallel_lanes(1.0), starts, goals, plans)
    assert check(parallel_lanes(2.0), starts, goals, plans) == ""
    fmap = parallel_lanes(1.0)
    graph = compile_map(fmap)
    near = near_elements(fmap, fmap.vehicle_types[0].radius)
    result = plan_prioritised(graph, near, CLEAR, starts, goals)
    assert result.solved
    planned = [p for p in result.plans if p is not None]
    assert validate_plans(graph, near, CLEAR, starts, goals, planned) == []
    assert planned[1][-1].arrive > 15, "the second cart waited for the first"


@pytest.mark.parametrize("count", [4, 12, 24])
def test_prioritised_plans_on_the_plant_are_valid(plant_map: FacilityMap, count: int) -> None:
    """Carts leave their parking spots for stations all at once: every plan found and valid, and
    no plan is shorter than the cart's own fastest path."""
    graph = compile_map(plant_map)
    near = near_elements(plant_map, plant_map.vehicle_types[0].radius)
    starts = [p.node for p in plant_map.parking[:count]]
    goals = [s.node for s in plant_map.stations[:count]]
    no_through = plant_map.no_through_nodes
    result = plan_prioritised(graph, near, CLEAR, starts, goals, no_through=no_through)
    assert result.solved
    plans = [p for p in result.plans if p is not None]
    assert validate_plans(graph, near, CLEAR, starts, goals, plans) == []
    assert not any(v.node in no_through for p in plans for v in p[1:]), "nobody drives through a parking bay"
    for plan, start, goal in zip(plans, starts, goals, strict=True):
        assert plan[-1].arrive >= graph.time(start, goal) - 1e-6
    assert sum(p[-1].arrive for p in plans) < 1.5 * sum(graph.time(s, g) for s, g in zip(starts, goals, strict=True))


def test_small_map_vehicles_trade_places(small_map: FacilityMap) -> None:
    """Around the one-way loop and through the corridor and the fire door: four carts each take
    the next one's node."""
    graph = compile_map(small_map)
    near = near_elements(small_map, small_map.vehicle_types[0].radius)
    starts = ["A1", "A3", "A5", "A7"]
    goals = ["A3", "A5", "A7", "A1"]
    result = plan_prioritised(graph, near, CLEAR, starts, goals)
    assert result.solved
    plans = [p for p in result.plans if p is not None]
    assert validate_plans(graph, near, CLEAR, starts, goals, plans) == []
    assert all(math.isfinite(p[-1].arrive) for p in plans)


def test_prioritised_plans_on_the_warehouse_restart_until_all_are_planned() -> None:
    """60 carts from the depot and the rack bays to 60 racks: in the first order some cannot
    leave their bay before an earlier cart settles in front of it; planning those first works."""
    fmap = load_map("warehouse")
    graph = compile_map(fmap)
    near = near_elements(fmap, fmap.vehicle_types[0].radius)
    starts, goals = start_nodes(fmap, 60), [s.node for s in fmap.stations][:60]
    no_through = fmap.no_through_nodes
    first_order = plan_prioritised(graph, near, CLEAR, starts, goals, no_through=no_through, restarts=0)
    assert not first_order.solved
    result = plan_prioritised(graph, near, CLEAR, starts, goals, no_through=no_through)
    assert result.solved
    plans = [p for p in result.plans if p is not None]
    assert validate_plans(graph, near, CLEAR, starts, goals, plans) == []


def test_a_vehicle_that_turns_on_the_spot_is_planned_to_stand_while_it_turns(small_map_data: dict[str, Any]) -> None:
    """The cart turns on the spot at 45 deg/s: its plan A2 -> A3 -> M1 stands 2 s at A3 (90
    degrees), the validator takes it, and refuses the plan of a cart that turns while it drives
    (no stand at the corner) for this one. A straight run has no stand."""
    data = {**small_map_data, "vehicle_types": [{**small_map_data["vehicle_types"][0], "turn_rate_deg_s": 45.0}]}
    turning = map_from_wire(MapFile.model_validate(data))
    near = near_elements(turning, turning.vehicle_types[0].radius)
    spinning, plain = compile_map(turning), compile_map(load_map("small_test"))
    (turned,) = plan_prioritised(spinning, near, CLEAR, ["A2"], ["M1"]).plans
    (driven,) = plan_prioritised(plain, near, CLEAR, ["A2"], ["M1"]).plans
    assert turned is not None and driven is not None
    assert [v.node for v in turned] == ["A2", "A3", "M1"]
    corner = turned[1]
    assert corner.depart - corner.arrive == pytest.approx(2.0)
    assert validate_plans(spinning, near, CLEAR, ["A2"], ["M1"], [turned]) == []
    problems = validate_plans(spinning, near, CLEAR, ["A2"], ["M1"], [driven])
    assert problems == ["vehicle 0: leaves A3 before it has turned on the spot"]
    (straight,) = plan_prioritised(spinning, near, CLEAR, ["A1"], ["A3"]).plans
    assert straight is not None and all(v.depart == v.arrive for v in straight[1:-1])


def test_a_vehicle_that_turns_on_the_spot_turns_at_its_start_first(small_map_data: dict[str, Any]) -> None:
    """Facing west at A2 (the lane to A3 runs east), the cart turning at 45 deg/s stands 4 s
    before it leaves; facing east it leaves at once. The validator, told the heading, refuses
    the plan made without it; not told, it takes both."""
    data = {**small_map_data, "vehicle_types": [{**small_map_data["vehicle_types"][0], "turn_rate_deg_s": 45.0}]}
    turning = map_from_wire(MapFile.model_validate(data))
    near = near_elements(turning, turning.vehicle_types[0].radius)
    graph = compile_map(turning)
    west = sipp(graph, ReservationTable(near, CLEAR), "A2", "A3", start_heading=math.pi)
    east = sipp(graph, ReservationTable(near, CLEAR), "A2", "A3", start_heading=0.0)
    assert west is not None and east is not None
    assert west[0].depart == pytest.approx(4.0) and east[0].depart == pytest.approx(0.0)
    assert validate_plans(graph, near, CLEAR, ["A2"], ["A3"], [west], start_headings=[math.pi]) == []
    problems = validate_plans(graph, near, CLEAR, ["A2"], ["A3"], [east], start_headings=[math.pi])
    assert problems == ["vehicle 0: leaves A2 before it has turned on the spot"]
    assert validate_plans(graph, near, CLEAR, ["A2"], ["A3"], [east]) == []
