"""What the core trips on stays where it is: an order the dispatcher fails on is quarantined, a
vehicle whose event fails is taken out of service, each with an alarm naming it, and the rest of
the fleet goes on; so does a vehicle whose path planning fails, and failing deadlock checks are
reported without stopping the tick."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet import unjam
from fleet.events import NodeReached, VehicleMoved, VehicleStatus
from fleet.model import OrderState
from maps import FacilityMap
from sim.runner import SimConfig, Simulation


def _sim(small_map: FacilityMap) -> Simulation:
    return Simulation(small_map, SimConfig(vehicles=2, seed=3), demand_enabled=False)


def test_an_order_the_solver_overflows_on_is_quarantined_and_the_others_go_on(small_map: FacilityMap) -> None:
    """A due time of 1e300 s overflows OR-Tools' int64: that order waits with its reason and one
    alarm; the next order finishes; changing the poison order's priority tries it again."""
    sim = _sim(small_map)
    c = sim.controller
    poison = c.accept(replace(c.check_order("ST-A", "ST-B"), due_at=1e300))
    good = c.submit_order("ST-A", "ST-C")
    sim.run_for(900)
    assert c.orders[good.id].state is OrderState.FINISHED
    held = c.orders[poison.id]
    assert held.state is OrderState.ACCEPTED and held.reason is not None and "OverflowError" in held.reason
    assert [a.code for a in c.alarms].count("order-quarantined") == 1
    assert poison.id in c.quarantined and c.dispatch_problem is None
    c.set_priority(poison.id, 3)
    assert poison.id not in c.quarantined
    sim.run_for(60)
    assert poison.id in c.quarantined, "still poison: held again at the next run"
    c.cancel_order(poison.id)
    assert poison.id not in c.quarantined and c.orders[poison.id].state is OrderState.CANCELLED


def test_a_vehicle_whose_event_fails_is_taken_out_of_service(small_map: FacilityMap) -> None:
    """A node report naming no node of the map raises inside the core: that vehicle goes out of
    service with a vehicle-quarantined alarm, the other one serves the order."""
    sim = _sim(small_map)
    c = sim.controller
    sim.run_for(5)
    c.handle(NodeReached("AGV-01", "NOWHERE"))
    assert not c.vehicles["AGV-01"].in_service
    assert any(a.code == "vehicle-quarantined" and a.vehicle_id == "AGV-01" for a in c.alarms)
    order = c.submit_order("ST-A", "ST-B")
    sim.run_for(900)
    assert c.orders[order.id].state is OrderState.FINISHED and c.orders[order.id].vehicle_id == "AGV-02"


def test_a_vehicle_whose_path_planning_fails_is_taken_out_and_the_tick_goes_on(
    small_map: FacilityMap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning AGV-01's path raises (a planner bug) when the dispatcher gives it the order: AGV-01
    goes out of service with an alarm naming it and the planning, the order goes to AGV-02 and
    finishes; no tick raises."""
    sim = _sim(small_map)
    c = sim.controller
    planned = c._set_route

    def fails_for_agv_01(vehicle_id: str, goal: str) -> None:
        if vehicle_id == "AGV-01":
            raise RuntimeError("planner bug")
        planned(vehicle_id, goal)

    monkeypatch.setattr(c, "_set_route", fails_for_agv_01)
    sim.run_for(5)
    orders = [c.submit_order("ST-A", "ST-B"), c.submit_order("ST-A", "ST-C")]
    sim.run_for(1200)
    assert [c.orders[o.id].state for o in orders] == [OrderState.FINISHED] * 2
    assert {c.orders[o.id].vehicle_id for o in orders} == {"AGV-02"}
    assert not c.vehicles["AGV-01"].in_service
    quarantined = [a for a in c.alarms if a.code == "vehicle-quarantined"]
    assert len(quarantined) == 1 and "planning its path" in quarantined[0].message


def test_failing_deadlock_checks_are_reported_and_tried_again(
    small_map: FacilityMap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadlock checks raise: one unjam-failed alarm, `unjam_problem` set (readiness says it),
    orders still finish; once the checks work again the problem clears."""
    sim = _sim(small_map)
    c = sim.controller

    def broken(_: object) -> None:
        raise RuntimeError("cycle search bug")

    monkeypatch.setattr(unjam, "check_deadlocks", broken)
    order = c.submit_order("ST-A", "ST-B")
    sim.run_for(900)
    assert c.orders[order.id].state is OrderState.FINISHED
    assert c.unjam_problem is not None and "cycle search bug" in c.unjam_problem
    assert [a.code for a in c.alarms].count("unjam-failed") == 1
    monkeypatch.undo()
    sim.run_for(2 * c.config.deadlock_check_s)
    assert c.unjam_problem is None


def test_an_e_stopped_vehicle_gets_no_new_work_and_says_why(small_map: FacilityMap) -> None:
    """A vehicle reporting an e-stop: one vehicle-safety-stop alarm, not available, its wait
    reason names the stop; the order goes to the other vehicle; released, it is available again."""
    sim = _sim(small_map)
    c = sim.controller
    sim.run_for(5)
    c.handle(VehicleStatus("AGV-01", True, "AUTOMATIC", (), "e-stop (MANUAL)"))
    v = c.vehicles["AGV-01"]
    assert not v.available and v.safety_stop == "e-stop (MANUAL)"
    assert c.wait_reason("AGV-01") == "stopped by its safety system: e-stop (MANUAL)"
    assert c.wait_causes()["AGV-01"] == "safety"
    order = c.submit_order("ST-A", "ST-B")
    sim.run_for(600)
    assert c.orders[order.id].state is OrderState.FINISHED and c.orders[order.id].vehicle_id == "AGV-02"
    c.handle(VehicleStatus("AGV-01", True, "AUTOMATIC", ()))
    assert c.vehicles["AGV-01"].available and c.wait_reason("AGV-01") is None
    codes = [a.code for a in c.alarms]
    assert codes.count("vehicle-safety-stop") == 1 and codes.count("vehicle-safety-cleared") == 1


def test_a_vehicle_moved_by_hand_is_placed_where_it_stands_or_taken_out(small_map: FacilityMap) -> None:
    """An idle vehicle reported on another free node is placed there (vehicle-moved) and then
    serves an order from there; one reported on the node another vehicle holds is taken out of
    service with a position-conflict alarm."""
    sim = _sim(small_map)
    c = sim.controller
    sim.run_for(5)
    one, two = c.vehicles["AGV-01"], c.vehicles["AGV-02"]
    free = next(n.id for n in small_map.nodes if n.id not in (one.node, two.node) and n.id.startswith("A"))
    c.handle(VehicleMoved("AGV-01", free))
    assert c.vehicles["AGV-01"].node == free and c.vehicles["AGV-01"].in_service
    c.handle(VehicleMoved("AGV-02", free))
    assert not c.vehicles["AGV-02"].in_service and c.vehicles["AGV-02"].node == two.node
    codes = [a.code for a in c.alarms]
    assert codes.count("vehicle-moved") == 1 and codes.count("position-conflict") == 1
