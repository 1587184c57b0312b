"""The vehicle's load sensing against the controller's record, over VDA 5050 (in-process bus):
agreement through a transport, and a mismatch that waits for an operator's decision."""

from __future__ import annotations

import pytest

from fleet.core import OrderRejected
from fleet.model import OrderState
from maps import FacilityMap
from sim.fleets import VdaFleet
from sim.runner import SimConfig, Simulation


def one_vehicle(fmap: FacilityMap) -> tuple[Simulation, VdaFleet]:
    sim = Simulation(fmap, SimConfig(vehicles=1, seed=4, protocol="vda5050"), demand_enabled=False)
    assert isinstance(sim.fleet, VdaFleet)
    sim.run_for(2)
    return sim, sim.fleet


def test_a_stray_load_holds_the_vehicle_until_it_is_taken_off(small_map: FacilityMap) -> None:
    """Through a whole transport the sensing agrees with pick and drop (no alarm). A load
    appearing on the empty vehicle is a mismatch: one alarm, no new work; trusting the vehicle
    keeps it waiting for the load to be taken off; once it is, the alarm clears by itself and the
    waiting order is served."""
    sim, fleet = one_vehicle(small_map)
    c = sim.controller
    order = c.submit_order("ST-A", "ST-B")
    sim.run_for(300)
    assert c.orders[order.id].state is OrderState.FINISHED
    assert not [a for a in c.alarms if a.code == "load-mismatch"]
    vehicle = fleet.vehicles[0]
    vehicle.loads = [{"loadId": "stray", "loadType": "rack"}]
    vehicle.hardware_errors.append({"errorType": "bumperHit", "errorLevel": "WARNING"})
    sim.run_for(3)
    raised = [a.code for a in c.alarms if a.code in ("load-mismatch", "vehicle-error")]
    assert sorted(raised) == ["load-mismatch", "vehicle-error"]
    vid = vehicle.key.serial_number
    assert c.vehicles[vid].load_mismatch == f"{vid} reports a load but should be empty"
    assert not c.vehicles[vid].available
    waiting = c.submit_order("ST-A", "ST-B")
    sim.run_for(60)
    assert c.orders[waiting.id].state is OrderState.ACCEPTED, "no work for a vehicle with a load mismatch"
    c.decide_load(vid, "vehicle")
    sim.run_for(30)
    assert c.vehicles[vid].load_mismatch == f"{vid} carries a load nobody ordered: take it off"
    assert c.orders[waiting.id].state is OrderState.ACCEPTED
    vehicle.loads = []
    vehicle.hardware_errors.clear()
    sim.run_for(300)
    assert c.vehicles[vid].load_mismatch is None
    assert any(a.code == "load-mismatch-resolved" for a in c.alarms)
    assert any(a.code == "vehicle-error-cleared" and "bumperHit" in a.message for a in c.alarms)
    assert c.orders[waiting.id].state is OrderState.FINISHED
    with pytest.raises(OrderRejected, match="no load mismatch"):
        c.decide_load(vid, "record")


def _lose_the_load_on_the_way(sim: Simulation, fleet: VdaFleet) -> str:
    c = sim.controller
    order = c.submit_order("ST-A", "ST-B")
    for _ in range(1200):
        sim.step()
        if c.orders[order.id].state is OrderState.TO_DROPOFF:
            break
    sim.run_for(1)
    fleet.vehicles[0].loads = []  # fell off, or taken off by hand
    sim.run_for(200)
    return order.id


@pytest.mark.parametrize("trust", ["record", "vehicle"])
def test_a_load_lost_on_the_way_waits_at_the_drop_off_for_a_decision(small_map: FacilityMap, trust: str) -> None:
    """The vehicle stops reporting its load on the way to the drop-off: it drives on but starts
    no drop there; it waits, and says for what. Trusting the record, it drops and the order
    finishes; trusting the vehicle, the order fails with the reason and the vehicle is free."""
    sim, fleet = one_vehicle(small_map)
    c = sim.controller
    oid = _lose_the_load_on_the_way(sim, fleet)
    vid = fleet.vehicles[0].key.serial_number
    assert c.orders[oid].state is OrderState.TO_DROPOFF
    assert c.vehicles[vid].node == "SB", "it drove on to the drop-off"
    assert c.waits()[vid] == (
        "decision",
        f"waits for an operator's decision: {vid} reports no load but should be carrying {oid}",
    )
    (alarm,) = [a for a in c.alarms if a.code == "load-mismatch"]
    assert oid in alarm.message
    c.decide_load(vid, trust)
    sim.run_for(120)
    done = c.orders[oid]
    if trust == "record":
        assert done.state is OrderState.FINISHED
    else:
        assert done.state is OrderState.FAILED and "operator decision" in (done.reason or "")
        assert c.vehicles[vid].loads == () and c.vehicles[vid].available
    assert vid not in c.waits()
    follow = c.submit_order("ST-A", "ST-B")
    sim.run_for(300)
    assert c.orders[follow.id].state is OrderState.FINISHED
