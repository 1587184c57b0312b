"""OR-Tools assignment: valid plans, never worse than the greedy baseline, priorities and limits honoured."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from maps import FacilityMap
from planners.assignment import (
    AssignmentPlan,
    OrderTask,
    Stop,
    StopKind,
    VehicleSlot,
    energy_use_for,
    greedy_plan,
    route_energy,
    solve_assignment,
    validate_plan,
)
from planners.graph import CompiledGraph, compile_map


@pytest.fixture(scope="module")
def graph(plant_map: FacilityMap) -> CompiledGraph:
    return compile_map(plant_map)


def random_instance(
    fmap: FacilityMap, g: CompiledGraph, seed: int, n_orders: int = 15, n_vehicles: int = 5
) -> tuple[list[OrderTask], list[VehicleSlot]]:
    rng = np.random.default_rng(seed)
    picks = [s for s in fmap.stations if s.kind.can_pick]
    drops = [s for s in fmap.stations if s.kind.can_drop]
    orders = []
    for i in range(n_orders):
        p, d = picks[int(rng.integers(len(picks)))], drops[int(rng.integers(len(drops)))]
        orders.append(OrderTask(f"o{i}", g.index[p.node], g.index[d.node], p.service_time_s, d.service_time_s))
    vehicles = [
        VehicleSlot(f"v{k}", int(rng.integers(len(g.node_ids))), float(rng.uniform(0, 60))) for k in range(n_vehicles)
    ]
    return orders, vehicles


def test_beats_or_equals_greedy_on_20_instances(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """Total completion time of OR-Tools <= greedy nearest-vehicle on every instance, and better on most."""
    better = 0
    for seed in range(20):
        orders, vehicles = random_instance(plant_map, graph, seed)
        plan = solve_assignment(orders, vehicles, graph.travel_time, time_budget_s=5.0)
        base = greedy_plan(orders, vehicles, graph.travel_time)
        assert validate_plan(plan, orders, vehicles) == []
        assert not plan.unassigned
        assert plan.objective <= base.objective + 1e-6
        better += plan.objective < base.objective - 1e-6
    assert better >= 15, f"OR-Tools improved on greedy in only {better} of 20 instances"


def test_same_input_same_plan(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    orders, vehicles = random_instance(plant_map, graph, seed=42)
    first = solve_assignment(orders, vehicles, graph.travel_time, time_budget_s=5.0)
    second = solve_assignment(orders, vehicles, graph.travel_time, time_budget_s=5.0)
    assert first.routes == second.routes


def test_priority_order_is_served_first(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """One vehicle, two identical orders: the one with priority 5 is completed first."""
    s = plant_map.station_by_id
    p, d = graph.index[s["RMW-WAFER"].node], graph.index[s["PECVD-3-IN"].node]
    orders = [OrderTask("low", p, d, 20, 20, priority=0), OrderTask("high", p, d, 20, 20, priority=5)]
    plan = solve_assignment(orders, [VehicleSlot("v", p)], graph.travel_time)
    assert plan.orders_of("v") == ("high", "low")


def test_capacity_lets_a_vehicle_carry_two(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """A two-rack vehicle picks both loads before delivering when that finishes both sooner."""
    s = plant_map.station_by_id
    p1, p2 = graph.index[s["RMW-WAFER"].node], graph.index[s["RMW-GLASS"].node]
    d = graph.index[s["LAM-1-IN"].node]
    orders = [OrderTask("a", p1, d, 5, 5), OrderTask("b", p2, d, 5, 5)]
    vehicles = [VehicleSlot("v", p1, capacity=2)]
    plan = solve_assignment(orders, vehicles, graph.travel_time)
    assert validate_plan(plan, orders, vehicles) == []
    kinds = [stop.kind for stop in plan.routes["v"]]
    assert kinds == [StopKind.PICKUP, StopKind.PICKUP, StopKind.DROPOFF, StopKind.DROPOFF]


def test_allowed_vehicles_are_honoured(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    orders, vehicles = random_instance(plant_map, graph, seed=7, n_orders=8, n_vehicles=3)
    only_v0 = [OrderTask(o.id, o.pickup, o.dropoff, allowed_vehicles=frozenset({"v0"})) for o in orders[:3]]
    orders = only_v0 + orders[3:]
    plan = solve_assignment(orders, vehicles, graph.travel_time)
    assert validate_plan(plan, orders, vehicles) == []
    assert set(plan.orders_of("v0")) >= {"o0", "o1", "o2"}


def test_validator_catches_broken_plans() -> None:
    """Drop-off before pick-up, a missing order and an order served twice are all reported."""
    orders = [OrderTask("a", 0, 1), OrderTask("b", 1, 2)]
    vehicles = [VehicleSlot("v", 0), VehicleSlot("w", 0)]
    broken = AssignmentPlan(
        routes={
            "v": (Stop("a", StopKind.DROPOFF), Stop("a", StopKind.PICKUP)),
            "w": (Stop("a", StopKind.PICKUP), Stop("a", StopKind.DROPOFF)),
        },
        completion_s={},
        objective=0.0,
    )
    found = validate_plan(broken, orders, vehicles)
    assert any("dropped off by v without being on board" in p for p in found)
    assert any("order a: picked up twice" in p for p in found)
    assert any("order b: neither served" in p for p in found)


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="priority"):
        OrderTask("x", 0, 1, priority=-1)
    with pytest.raises(ValueError, match="capacity"):
        VehicleSlot("v", 0, capacity=0)


def with_current(orders: list[OrderTask], plan: AssignmentPlan) -> list[OrderTask]:
    """The orders as assigned by `plan`, in each vehicle's sequence."""
    owner = {oid: vid for vid in plan.routes for oid in plan.orders_of(vid)}
    sequence = {oid: k for vid in plan.routes for k, oid in enumerate(plan.orders_of(vid))}
    kept = [replace(o, current_vehicle=owner.get(o.id)) for o in orders]
    return sorted(kept, key=lambda o: sequence.get(o.id, len(sequence)))


def test_a_worse_standing_plan_is_kept_within_the_margin(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """Standing assignment: the solved plan with two vehicles' work swapped. Margin 0: the solver
    moves orders back; margin 99 %: the standing plan stays, each order on its vehicle."""
    orders, vehicles = random_instance(plant_map, graph, seed=4, n_orders=8, n_vehicles=3)
    solved = solve_assignment(orders, vehicles, graph.travel_time, time_budget_s=5.0)
    a, b = (v.id for v in vehicles[:2])
    swapped_routes = {**solved.routes, a: solved.routes[b], b: solved.routes[a]}
    swapped = with_current(orders, replace(solved, routes=swapped_routes))
    standing = greedy_plan(swapped, vehicles, graph.travel_time, keep_current=True)
    assert standing.objective > solved.objective, "the swap made it worse"
    moved = solve_assignment(swapped, vehicles, graph.travel_time, time_budget_s=5.0, keep_margin=0.0)
    assert moved.solver == "or-tools" and moved.objective < standing.objective
    assert validate_plan(moved, swapped, vehicles) == []
    kept = solve_assignment(swapped, vehicles, graph.travel_time, time_budget_s=5.0, keep_margin=0.99)
    assert kept.solver == "kept"
    assert validate_plan(kept, swapped, vehicles) == []
    assert all(o.id in kept.orders_of(o.current_vehicle) for o in swapped if o.current_vehicle)


def test_a_new_order_keeps_the_standing_assignments(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """Re-solving with one more order and the default dispatcher margin (5 %) moves nothing
    already assigned, on 10 random instances."""
    for seed in range(10):
        orders, vehicles = random_instance(plant_map, graph, seed=seed, n_orders=13, n_vehicles=5)
        first = solve_assignment(orders[:12], vehicles, graph.travel_time)
        again = [*with_current(orders[:12], first), orders[12]]
        second = solve_assignment(again, vehicles, graph.travel_time, keep_margin=0.05)
        assert validate_plan(second, again, vehicles) == []
        assert all(o.id in second.orders_of(o.current_vehicle) for o in again if o.current_vehicle), seed


def test_a_batch_of_new_orders_is_placed_without_shuffling_the_standing_ones(
    plant_map: FacilityMap, graph: CompiledGraph
) -> None:
    """Six new orders at once on top of twelve standing ones: the new ones are placed well (the
    plan beats appending them greedily) and, with the 5 % margin, standing orders move only
    when that beats the best plan that keeps them by the margin, which on these instances it
    never does. (Measured against the plan with new orders merely appended, as before, the
    solver moved 4 to 7 standing orders on 8 of these 10 seeds.)"""
    for seed in range(10):
        orders, vehicles = random_instance(plant_map, graph, seed=seed, n_orders=18, n_vehicles=5)
        first = solve_assignment(orders[:12], vehicles, graph.travel_time, solution_limit=2000)
        again = [*with_current(orders[:12], first), *orders[12:]]
        appended = greedy_plan(again, vehicles, graph.travel_time, keep_current=True)
        second = solve_assignment(again, vehicles, graph.travel_time, solution_limit=2000, keep_margin=0.05)
        assert validate_plan(second, again, vehicles) == []
        assert second.objective <= appended.objective + 1e-6
        assert all(o.id in second.orders_of(o.current_vehicle) for o in again if o.current_vehicle), seed


def test_the_due_order_is_served_in_time_when_possible(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """One vehicle, two jobs. Without due times the solver does first the one that keeps the
    total completion time least; give the other a due time only met if it goes first: it goes
    first and is on time, and the first one waits."""
    stations = plant_map.station_by_id
    start = graph.index[plant_map.parking[0].node]

    def task(oid: str, pickup: str, dropoff: str, due: float | None = None) -> OrderTask:
        p, d = stations[pickup], stations[dropoff]
        nodes = graph.index[p.node], graph.index[d.node]
        return OrderTask(oid, *nodes, p.service_time_s, d.service_time_s, due_in_s=due)

    vehicle = [VehicleSlot("v", start)]
    jobs = {"a": ("RMW-WAFER", "PECVD-1-IN"), "b": ("PACK-OUT", "FGS-1")}
    free = solve_assignment([task(k, *v) for k, v in jobs.items()], vehicle, graph.travel_time, time_budget_s=5.0)
    first, second = free.orders_of("v")
    alone = greedy_plan([task(second, *jobs[second])], vehicle, graph.travel_time).completion_s[second]
    assert free.completion_s[second] > alone + 30, "done second, it would be late"
    orders = [task(first, *jobs[first]), task(second, *jobs[second], due=alone + 30)]
    timed = solve_assignment(orders, vehicle, graph.travel_time, time_budget_s=5.0)
    assert timed.orders_of("v") == (second, first)
    assert timed.completion_s[second] <= alone + 30
    assert validate_plan(timed, orders, vehicle) == []


def test_a_load_not_ready_yet_is_picked_up_when_ready_and_the_vehicle_works_meanwhile(
    plant_map: FacilityMap, graph: CompiledGraph
) -> None:
    """One vehicle, two jobs. The one the solver does first, freely, gets a load that is ready
    only after the other could be done: the vehicle does the other meanwhile, picks the late
    load up no sooner than it is ready, and the validator passes the plan and catches one that
    claims to finish sooner. The greedy baseline waits for the load as well."""
    stations = plant_map.station_by_id
    start = graph.index[plant_map.parking[0].node]
    travel = graph.travel_time

    def task(oid: str, pickup: str, dropoff: str, ready: float = 0.0) -> OrderTask:
        p, d = stations[pickup], stations[dropoff]
        nodes = graph.index[p.node], graph.index[d.node]
        return OrderTask(oid, *nodes, p.service_time_s, d.service_time_s, ready_in_s=ready)

    vehicle = [VehicleSlot("v", start)]
    jobs = {"a": ("RMW-WAFER", "PECVD-1-IN"), "b": ("PACK-OUT", "FGS-1")}
    free = solve_assignment([task(k, *v) for k, v in jobs.items()], vehicle, travel, time_budget_s=5.0)
    first, second = free.orders_of("v")
    ready = free.completion_s[second] + 60
    orders = [task(first, *jobs[first], ready=ready), task(second, *jobs[second])]
    timed = solve_assignment(orders, vehicle, travel, time_budget_s=5.0)
    assert timed.orders_of("v") == (second, first)
    late = orders[0]
    soonest = ready + late.pickup_service_s + travel[late.pickup, late.dropoff] + late.dropoff_service_s
    assert timed.completion_s[first] == pytest.approx(soonest)
    assert validate_plan(timed, orders, vehicle, travel) == []
    early = replace(timed, completion_s={**timed.completion_s, first: soonest - 10})
    assert f"order {first}: finished at" in " ".join(validate_plan(early, orders, vehicle, travel))
    greedy = greedy_plan(orders, vehicle, travel)
    assert greedy.completion_s[first] >= soonest - 1e-6
    assert validate_plan(greedy, orders, vehicle, travel) == []
    with pytest.raises(ValueError, match="ready_in_s"):
        task("c", *jobs["a"], ready=-1.0)


def energy_slots(
    fmap: FacilityMap, g: CompiledGraph, vehicles: list[VehicleSlot], wh: list[float]
) -> list[VehicleSlot]:
    """The vehicles with the map's energy model and the given energy above their reserve."""
    use = energy_use_for(fmap.vehicle_types[0], g.travel_time, [g.index[c.node] for c in fmap.chargers])
    return [replace(v, energy=use, energy_wh=e) for v, e in zip(vehicles, wh, strict=True)]


def test_battery_limits_what_a_vehicle_takes(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """Two vehicles side by side, eight orders. With energy for one order but no two, v0 takes at
    most what it can finish and still reach a charger; without the limit it takes its share.
    Every plan passes the validator's energy check; the greedy baseline honours it too."""
    orders, vehicles = random_instance(plant_map, graph, seed=3, n_orders=8, n_vehicles=2)
    vehicles = [replace(v, node=vehicles[0].node, available_in_s=0.0) for v in vehicles]
    unlimited = solve_assignment(orders, vehicles, graph.travel_time, solution_limit=2000)
    assert len(unlimited.orders_of("v0")) >= 2, "without a limit v0 shares the work"
    (probe,) = energy_slots(plant_map, graph, vehicles[:1], [0.0])

    def serving(*ids: str) -> float:
        stops = [Stop(i, k) for i in ids for k in (StopKind.PICKUP, StopKind.DROPOFF)]
        return route_energy(probe, stops, orders, graph.travel_time)

    two = min(serving(a.id, b.id) for a in orders for b in orders if a is not b)
    assert min(serving(o.id) for o in orders) < 0.95 * two, "one order fits, no two do"
    limited = energy_slots(plant_map, graph, vehicles, [0.95 * two, 1e6])
    for plan in (
        solve_assignment(orders, limited, graph.travel_time, solution_limit=2000),
        greedy_plan(orders, limited, graph.travel_time),
    ):
        assert validate_plan(plan, orders, limited, graph.travel_time) == [], plan.solver
        assert len(plan.orders_of("v0")) <= 1, plan.solver
        assert not plan.unassigned, plan.solver
        used = route_energy(limited[0], plan.routes["v0"], orders, graph.travel_time)
        assert used <= limited[0].energy_wh


def test_a_vehicle_without_energy_for_any_order_gets_none(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    orders, vehicles = random_instance(plant_map, graph, seed=5, n_orders=4, n_vehicles=1)
    empty = energy_slots(plant_map, graph, vehicles, [1.0])
    plan = solve_assignment(orders, empty, graph.travel_time)
    assert set(plan.unassigned) == {o.id for o in orders}
    assert validate_plan(plan, orders, empty, graph.travel_time) == []


def test_validator_catches_a_route_beyond_the_battery(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    orders, vehicles = random_instance(plant_map, graph, seed=6, n_orders=3, n_vehicles=1)
    full = energy_slots(plant_map, graph, vehicles, [1e6])
    plan = greedy_plan(orders, full, graph.travel_time)
    need = route_energy(full[0], plan.routes["v0"], orders, graph.travel_time)
    assert need > 0
    short = energy_slots(plant_map, graph, vehicles, [need - 1.0])
    assert validate_plan(plan, orders, full, graph.travel_time) == []
    found = validate_plan(plan, orders, short, graph.travel_time)
    assert found and "route needs" in found[0] and "above its reserve" in found[0]


def test_energy_counts_driving_loads_waiting_and_the_way_to_a_charger(
    plant_map: FacilityMap, graph: CompiledGraph
) -> None:
    """One order by hand: drive and idle power on every leg, the loaded leg's extra, idle power
    during both services, and the drive from the drop-off to the nearest charger."""
    vtype = plant_map.vehicle_types[0]
    assert vtype.idle_power_w > 0 and vtype.load_consumption_wh_per_m > 0, "the plant map models both"
    s = plant_map.station_by_id
    p, d = graph.index[s["RMW-WAFER"].node], graph.index[s["PECVD-3-IN"].node]
    order = OrderTask("o", p, d, 20, 30)
    (v,) = energy_slots(plant_map, graph, [VehicleSlot("v", graph.index[plant_map.parking[0].node])], [1e6])
    t = graph.travel_time
    charger = min(float(t[d, graph.index[c.node]]) for c in plant_map.chargers)
    drive = vtype.max_speed * vtype.consumption_wh_per_m
    expected = (
        (t[v.node, p] + t[p, d] + charger) * (drive + vtype.idle_power_w / 3600)
        + t[p, d] * vtype.max_speed * vtype.load_consumption_wh_per_m
        + 50 * vtype.idle_power_w / 3600
    )
    stops = (Stop("o", StopKind.PICKUP), Stop("o", StopKind.DROPOFF))
    assert route_energy(v, stops, [order], t) == pytest.approx(expected)
    # A load ready 600 s after the vehicle gets there: it stands at the pick-up that long.
    later = replace(order, ready_in_s=float(t[v.node, p]) + 600)
    assert route_energy(v, stops, [later], t) == pytest.approx(expected + 600 * vtype.idle_power_w / 3600)
    busy = replace(v, available_in_s=400.0)  # free in 400 s: 200 s of that wait are left
    assert route_energy(busy, stops, [later], t) == pytest.approx(expected + 200 * vtype.idle_power_w / 3600)


def test_a_queue_beyond_the_battery_keeps_what_it_can_and_gives_up_the_rest(
    plant_map: FacilityMap, graph: CompiledGraph, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two orders stand on v0, whose energy now lasts for the first only: the first stays on v0
    (not moved for nothing), the second goes to v1, and the plan passes the energy check. The
    warm start is one OR-Tools accepts (pinning the given-up order to v0 made it refuse the
    start: "Vehicle 1 is not allowed at index 4" on stderr, and a search from scratch)."""
    orders, vehicles = random_instance(plant_map, graph, seed=3, n_orders=2, n_vehicles=2)
    vehicles = [replace(v, node=vehicles[0].node, available_in_s=0.0) for v in vehicles]
    (probe,) = energy_slots(plant_map, graph, vehicles[:1], [0.0])
    stops = [Stop(o.id, k) for o in orders for k in (StopKind.PICKUP, StopKind.DROPOFF)]
    first = route_energy(probe, stops[:2], orders, graph.travel_time)
    both = route_energy(probe, stops, orders, graph.travel_time)
    limited = energy_slots(plant_map, graph, vehicles, [(first + both) / 2, 1e6])
    standing = [replace(o, current_vehicle="v0") for o in orders]
    plan = solve_assignment(standing, limited, graph.travel_time, solution_limit=2000, keep_margin=0.05)
    assert validate_plan(plan, standing, limited, graph.travel_time) == []
    assert plan.orders_of("v0") == (orders[0].id,) and plan.orders_of("v1") == (orders[1].id,)
    assert "not allowed" not in capfd.readouterr().err


def test_each_load_on_board_draws_its_extra_on_every_leg(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """Two loads picked up at A and B, both dropped at C: the first rides A-B-C, the second B-C.
    The count is driving, service, and the load extra per leg times the loads on board; served
    one at a time it is what the direct legs give."""
    (slot,) = energy_slots(plant_map, graph, [VehicleSlot("v", 0, capacity=2)], [1e9])
    use, t = slot.energy, graph.travel_time
    assert use is not None and use.load_w > 0
    a, b, c = (graph.index[plant_map.station_by_id[s].node] for s in ("RMW-WAFER", "PACK-OUT", "FGS-1"))
    slot = replace(slot, node=a)
    orders = [OrderTask("o1", a, c, 10, 10), OrderTask("o2", b, c, 10, 10)]
    p, d = StopKind.PICKUP, StopKind.DROPOFF
    together = [Stop("o1", p), Stop("o2", p), Stop("o1", d), Stop("o2", d)]
    service = use.standing(40)
    expected = use.driving(t[a, b] + t[b, c]) + use.loaded(t[a, b]) + 2 * use.loaded(t[b, c]) + service
    assert route_energy(slot, together, orders, t, to_charger=False) == pytest.approx(expected)
    apart = [Stop("o1", p), Stop("o1", d), Stop("o2", p), Stop("o2", d)]
    one_by_one = use.driving(t[a, c] + t[c, b] + t[b, c]) + use.loaded(t[a, c]) + use.loaded(t[b, c]) + service
    assert route_energy(slot, apart, orders, t, to_charger=False) == pytest.approx(one_by_one)


def test_routes_with_several_loads_on_board_fit_the_battery(plant_map: FacilityMap, graph: CompiledGraph) -> None:
    """Vehicles carrying up to three loads, with half the energy the plan without a limit would
    use: every plan passes the validator's count (each load's extra on every leg it rides). The
    solver's energy dimension counts a load over its direct leg only; without cutting its routes
    back to the exact count, 6 of these 12 plans went beyond the battery (checked)."""
    for seed in range(12):
        orders, vehicles = random_instance(plant_map, graph, seed=seed, n_orders=10, n_vehicles=2)
        vehicles = [replace(v, capacity=3) for v in vehicles]
        unlimited = energy_slots(plant_map, graph, vehicles, [1e9, 1e9])
        free = solve_assignment(orders, unlimited, graph.travel_time, solution_limit=3000)
        need = [route_energy(s, free.routes[s.id], orders, graph.travel_time) for s in unlimited]
        slots = energy_slots(plant_map, graph, vehicles, [0.5 * n for n in need])
        plan = solve_assignment(orders, slots, graph.travel_time, solution_limit=3000)
        assert validate_plan(plan, orders, slots, graph.travel_time) == [], seed
        assert len(plan.unassigned) < len(orders), seed
