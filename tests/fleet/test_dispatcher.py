"""Dispatch policy: no order starves behind higher priorities beyond the configured wait, and an
order no vehicle of the fleet can carry is stated as such (reason and one alarm), not dropped."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any

import pytest

from fleet.clock import SimClock
from fleet.core import Controller
from fleet.events import Alarm, Tick
from fleet.model import OrderState
from maps import FacilityMap
from maps.schema import MapFile, map_from_wire
from sim.runner import SimConfig, Simulation


def _low_order_finished_by(small_map: FacilityMap, max_wait_s: float, until_s: float) -> float | None:
    """One cart; a priority-0 order first, then a priority-5 order every 40 s (more than one
    cart can serve): when the first one finished, if it did by `until_s`."""
    sim = Simulation(small_map, SimConfig(vehicles=1, seed=3), demand_enabled=False)
    sim.controller.dispatcher.config = replace(sim.controller.dispatcher.config, max_wait_s=max_wait_s)
    low = sim.controller.submit_order("ST-A", "ST-B", priority=0)
    while sim.elapsed < until_s:
        if int(sim.elapsed) % 40 == 0:
            sim.controller.submit_order("ST-C", "ST-B", priority=5)
        sim.run_for(1)
    return sim.controller.orders[low.id].entered(OrderState.FINISHED)


def test_a_low_priority_order_is_not_starved_beyond_the_bound(small_map: FacilityMap) -> None:
    bounded = _low_order_finished_by(small_map, max_wait_s=300, until_s=900)
    assert bounded is not None and bounded <= 300 + 450, "served soon after its wait passed the bound"
    assert _low_order_finished_by(small_map, max_wait_s=math.inf, until_s=900) is None, (
        "without the bound the stream of urgent orders keeps it waiting"
    )


def test_an_order_no_vehicle_of_the_fleet_can_carry_waits_and_says_why(small_map_data: dict[str, Any]) -> None:
    data = copy.deepcopy(small_map_data)
    data["vehicle_types"][0]["load_types"] = ["rack"]
    data["vehicle_types"].append({**data["vehicle_types"][0], "id": "tug", "load_types": ["bin"]})
    fmap = map_from_wire(MapFile.model_validate(data))
    clock = SimClock()
    core = Controller(fmap, clock)
    core.add_vehicle("AGV-01", "cart", "PA1")
    order = core.submit_order("ST-SD", "ST-D1")  # bins: only a tug carries them, and there is none
    commands = core.handle(Tick()) + core.handle(Tick())
    stated = core.orders[order.id]
    assert stated.state is OrderState.ACCEPTED and stated.reason is not None and "'bin'" in stated.reason
    alarms = [c for c in commands if isinstance(c, Alarm) and c.code == "unservable-order"]
    assert len(alarms) == 1 and order.id in alarms[0].message
    core.add_vehicle("TUG-01", "tug", "PA2")
    clock.advance(31.0)  # the next regular dispatch run
    core.handle(Tick())
    assert core.orders[order.id].state is not OrderState.ACCEPTED, "dispatched once a tug is there"
    assert core.orders[order.id].vehicle_id == "TUG-01"


def test_the_greedy_baseline_dispatches_too(small_map: FacilityMap) -> None:
    """The comparison baseline (nearest free vehicle) serves a short shift completely; an unknown
    solver name is refused."""
    import pytest

    from fleet.dispatcher import DispatchConfig

    with pytest.raises(ValueError, match="solver"):
        DispatchConfig(solver="random")
    sim = Simulation(small_map, SimConfig(vehicles=2, seed=3, dispatcher="greedy"), demand_enabled=False)
    orders = [sim.controller.submit_order("ST-A", "ST-B") for _ in range(3)]
    sim.run_for(900)
    assert all(sim.controller.orders[o.id].state is OrderState.FINISHED for o in orders)
    assert sim.oracle.collisions == []


def test_no_vehicle_is_sent_on_an_order_it_could_not_finish_and_still_reach_a_charger(
    small_map: FacilityMap,
) -> None:
    """Two carts, the one nearer the pick-up with a battery just above its reserve (enough for
    about 6 m): the order goes to the other one. With both batteries full it goes to the nearer
    one, so the rule, not the distance, decided."""

    def taker(near_battery: float) -> str | None:
        core = Controller(small_map, SimClock())
        core.add_vehicle("AGV-NEAR", "cart", "PA1", battery=near_battery)
        core.add_vehicle("AGV-FAR", "cart", "SC", battery=1.0)
        order = core.submit_order("ST-A", "ST-B")
        core.handle(Tick())
        return core.orders[order.id].vehicle_id

    assert taker(near_battery=1.0) == "AGV-NEAR"
    reserve = Controller(small_map, SimClock()).config.dispatch.reserve_battery
    assert taker(near_battery=reserve + 0.001) == "AGV-FAR"


def test_an_order_on_a_vehicle_that_may_no_longer_take_it_is_given_up(small_map: FacilityMap) -> None:
    """An order assigned (not started) to a cart whose battery has since fallen too low for it is
    no plan to keep: it goes to the cart that can finish it."""
    from fleet.dispatcher import VehicleAvailability

    core = Controller(small_map, SimClock())
    reserve = core.config.dispatch.reserve_battery
    core.add_vehicle("AGV-NEAR", "cart", "PA1", battery=reserve + 0.001)
    core.add_vehicle("AGV-FAR", "cart", "SC", battery=1.0)
    order = core.submit_order("ST-A", "ST-B").transition(OrderState.ASSIGNED, 0.0, vehicle_id="AGV-NEAR")
    fleet = [VehicleAvailability(v, v.node, 0.0, v.node) for v in core.vehicles.values()]
    decision = core.dispatcher.dispatch([order], fleet, frozenset(), now=0.0)
    assert decision.queues == {"AGV-NEAR": (), "AGV-FAR": (order.id,)}
    assert decision.plan is not None and decision.plan.solver != "kept"


def test_idle_vehicles_charge_in_idle_time_and_an_order_interrupts_it(plant_map: FacilityMap) -> None:
    """Opportunity charging on the plant (four chargers): an idle cart at 60 % goes to charge
    (one at 85 % does not); standing at the charger, an order stops its charge (StopCharging)
    and it starts the order when the charge is reported ended; one on its way turns at once."""
    from fleet.core import ControllerConfig
    from fleet.dispatcher import DispatchConfig
    from fleet.events import ActionFinished, ActionKind, StartAction, StopCharging
    from fleet.model import TaskKind, TaskPhase

    clock = SimClock()
    core = Controller(plant_map, clock, ControllerConfig(dispatch=DispatchConfig(opportunity_below=0.8)))
    charger = plant_map.chargers[0]
    core.add_vehicle("AGV-AT", "amr-rack", charger.node, battery=0.6)
    core.add_vehicle("AGV-FULL", "amr-rack", plant_map.parking[0].node, battery=0.85)
    commands = core.handle(Tick())
    at = core.vehicles["AGV-AT"]
    assert at.task is not None and at.task.kind is TaskKind.CHARGE and at.task.opportunity
    assert at.task.phase is TaskPhase.ACTION and any(isinstance(c, StartAction) for c in commands)
    full = core.vehicles["AGV-FULL"]
    assert full.task is None or full.task.kind is not TaskKind.CHARGE, "85 % is above the opportunity bound"
    core.set_in_service("AGV-FULL", False)  # the order must go to the charging cart
    order = core.submit_order("RMW-WAFER", "PECVD-1-IN")
    clock.advance(3.0)
    commands = core.handle(Tick())
    assert StopCharging("AGV-AT") in commands
    assert core.orders[order.id].vehicle_id == "AGV-AT" and core.orders[order.id].state is OrderState.ASSIGNED
    clock.advance(1.0)
    core.handle(ActionFinished("AGV-AT", ActionKind.CHARGE))
    assert core.orders[order.id].state is OrderState.TO_PICKUP, "started once the charge ended"


def test_opportunity_charging_leaves_the_last_free_charger(small_map: FacilityMap) -> None:
    """One charger on the small map: an idle cart at 60 % does not take it (a cart below 30 %
    may need it); below 30 % it does."""
    from fleet.core import ControllerConfig
    from fleet.dispatcher import DispatchConfig
    from fleet.model import TaskKind

    config = ControllerConfig(dispatch=DispatchConfig(opportunity_below=0.8))
    for battery, charges in ((0.6, False), (0.25, True)):
        core = Controller(small_map, SimClock(), config)
        core.add_vehicle("AGV-01", "cart", "PA1", battery=battery)
        core.handle(Tick())
        task = core.vehicles["AGV-01"].task
        assert (task is not None and task.kind is TaskKind.CHARGE) == charges, battery


def test_a_vehicle_queues_only_what_its_battery_carries_to_a_charger(plant_map: FacilityMap) -> None:
    """Battery as a resource of the solve, not only a filter: one cart with energy for either of
    two orders but not for both (each checked alone, both pass) is given one; with a full
    battery it is given both. Each plan passes the validator's energy check."""
    from fleet.dispatcher import DispatchConfig, DispatchDecision, VehicleAvailability
    from planners.assignment import OrderTask, route_energy, validate_plan
    from planners.graph import compile_map

    def decide(battery: float) -> tuple[DispatchDecision, list[str]]:
        core = Controller(plant_map, SimClock())
        core.add_vehicle("AGV-01", "amr-rack", plant_map.parking[0].node, battery=battery)
        orders = [core.submit_order("RMW-WAFER", "PECVD-1-IN"), core.submit_order("RMW-GLASS", "LAM-1-IN")]
        fleet = [VehicleAvailability(v, v.node, 0.0, v.node) for v in core.vehicles.values()]
        decision = core.dispatcher.dispatch(orders, fleet, frozenset(), now=0.0)
        assert decision.plan is not None and decision.problem is not None
        return decision, validate_plan(decision.plan, *decision.problem, core.dispatcher.travel_time)

    full, problems = decide(1.0)
    assert len(full.queues["AGV-01"]) == 2 and problems == []
    assert full.problem is not None
    (a, b), (slot,) = full.problem
    travel = compile_map(plant_map).travel_time

    def need(*tasks: OrderTask) -> float:
        return route_energy(slot, [s for t in tasks for s in t.stops], [a, b], travel)

    one, both = max(need(a), need(b)), min(need(a, b), need(b, a))
    assert one < both
    vtype = plant_map.vehicle_types[0]
    low, problems = decide(DispatchConfig().reserve_battery + (one + both) / 2 / vtype.battery_capacity_wh)
    assert len(low.queues["AGV-01"]) == 1 and problems == []


def test_no_more_vehicles_work_at_once_than_the_limit(plant_map: FacilityMap) -> None:
    """Admission control: three idle carts, three orders RMW-WAFER -> PECVD-1-IN, a limit of
    two working vehicles: two carts get work, the third none (the third order waits); without
    the limit all three work. Idle carts are admitted first where they keep others from a
    station an open order needs, then where others pass (here another station), and last on a
    parking spot, where they can stay without blocking anyone."""
    from fleet.dispatcher import DispatchConfig, VehicleAvailability

    parked = [p.node for p in plant_map.parking[:3]]

    def working(limit: int | None, nodes: list[str] = parked) -> set[str]:
        core = Controller(plant_map, SimClock())
        for k, node in enumerate(nodes, start=1):
            core.add_vehicle(f"AGV-{k:02d}", "amr-rack", node)
        orders = [core.submit_order("RMW-WAFER", "PECVD-1-IN") for _ in range(3)]
        core.dispatcher.config = replace(core.dispatcher.config, max_working_vehicles=limit)
        fleet = [VehicleAvailability(v, v.node, 0.0, v.node) for v in core.vehicles.values()]
        decision = core.dispatcher.dispatch(orders, fleet, frozenset(), now=0.0)
        return {vid for vid, queue in decision.queues.items() if queue}

    assert working(None) == {"AGV-01", "AGV-02", "AGV-03"}
    assert working(2) == {"AGV-01", "AGV-02"}, "the first ones of the fleet, the same each run"
    other_station = plant_map.station_by_id["PECVD-1-OUT"].node
    assert working(2, [parked[0], parked[1], other_station]) == {"AGV-01", "AGV-03"}, (
        "the cart in the way works, a parked one waits"
    )
    drop = plant_map.station_by_id["PECVD-1-IN"].node
    approach = next(a for a, b in plant_map.lane_between if b == drop and a not in (other_station, *parked))
    assert working(1, [other_station, approach, parked[0]]) == {"AGV-02"}, (
        "the cart on the way into a station an order needs works first"
    )
    assert DispatchConfig().max_working_vehicles is None, "no limit unless configured"


def test_a_working_limit_set_at_run_time_outlives_a_map_change(plant_map: FacilityMap) -> None:
    """The limit an operator sets stays when a new map is activated (the dispatcher is made
    anew then); a limit below 1 is refused naming the field, and changes nothing."""
    from fleet.core import OrderRejected

    core = Controller(plant_map, SimClock())
    core.set_max_working(2)
    core.replace_map(plant_map)
    assert core.dispatcher.config.max_working_vehicles == 2
    with pytest.raises(OrderRejected) as refused:
        core.set_max_working(0)
    assert refused.value.field == "max_working_vehicles"
    assert core.dispatcher.config.max_working_vehicles == 2
