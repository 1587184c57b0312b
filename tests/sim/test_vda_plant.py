"""The controller driving simulated VDA 5050 vehicles through the in-process bus: transports
finish, every message the controller sends is valid, a vehicle whose link dies is replaced, and
hostile messages change nothing."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from fleet.core import OrderRejected
from fleet.events import DriveNodes
from fleet.model import OrderState
from fleet.vda5050.master import Outgoing
from fleet.vda5050.schemas import schema_errors
from maps import FacilityMap
from sim.fleets import VdaFleet
from sim.runner import SimConfig, Simulation


def vda_sim(fmap: FacilityMap, vehicles: int = 3, **kw: object) -> tuple[Simulation, VdaFleet]:
    sim = Simulation(fmap, SimConfig(vehicles=vehicles, seed=4, protocol="vda5050", **kw))  # type: ignore[arg-type]
    assert isinstance(sim.fleet, VdaFleet)
    return sim, sim.fleet


def test_transports_finish_and_every_controller_message_is_valid(small_map: FacilityMap, vda5050_schemas: Path) -> None:
    sim, fleet = vda_sim(small_map, orders_per_hour=60)
    sent: list[tuple[str, bytes]] = []
    fleet.bus.connect("spy")
    for topic in ("uagv/v2/+/+/order", "uagv/v2/+/+/instantActions"):
        fleet.bus.subscribe("spy", topic, lambda t, p: sent.append((t, p)))
    sim.run_for(3600)
    report = sim.report(0.0)
    assert report.orders_accepted >= 40
    assert report.orders_stuck == 0 and report.collisions == 0 and report.claim_violations == 0
    assert report.orders_finished >= report.orders_accepted - 3
    assert "order" in {topic.rsplit("/", 1)[-1] for topic, _ in sent}
    for topic, payload in sent:
        name = topic.rsplit("/", 1)[-1]
        assert schema_errors("2.0.0", name, json.loads(payload), vda5050_schemas) == [], topic
    assert sum(fleet.master.dropped.values()) == 0


def test_vehicle_that_dies_is_marked_broken_and_its_order_replanned(small_map: FacilityMap) -> None:
    """Kill one vehicle's client on its way to a pick-up: its last will marks it CONNECTIONBROKEN,
    it gets no more work, and after the grace period its order goes to the other vehicle. The dead
    vehicle keeps its claims (a VDA 5050 vehicle drives on along its base when its link drops), so
    the other one waits for it, and says so."""
    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    sim.run_for(5)
    order = sim.controller.submit_order("ST-A", "ST-B")
    for _ in range(200):
        sim.step()
        if sim.controller.orders[order.id].state is OrderState.TO_PICKUP:
            break
    victim_id = sim.controller.orders[order.id].vehicle_id
    assert victim_id is not None
    victim = next(v for v in fleet.vehicles if v.key.serial_number == victim_id)
    fleet.drop_vehicle(victim)
    fleet.vehicles.remove(victim)  # its software is dead: it neither moves nor reports
    sim.run_for(5)
    assert sim.controller.vehicles[victim_id].online is False
    assert any(a.code == "vehicle-offline" for a in sim.controller.alarms)
    sim.run_for(60)
    replanned = sim.controller.orders[order.id]
    assert replanned.vehicle_id not in (None, victim_id)
    assert any(t.state is OrderState.ACCEPTED and t.reason and "offline" in t.reason for t in replanned.history)
    assert sim.controller.vehicles[victim_id].task is None, "an offline vehicle gets no task, not even parking"
    reason = sim.controller.wait_reason(replanned.vehicle_id or "")
    assert reason is not None and victim_id in reason


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("uagv/v2/fleetsim/AGV-01/state", b'{"headerId": 1, "timest', "invalid"),
        ("uagv/v2/fleetsim/AGV-01/state", json.dumps({"headerId": "x", "driving": "yes"}).encode(), "invalid"),
        ("uagv/v2/fleetsim/AGV-01/state", b"{" + b" " * 300_000 + b"}", "too_large"),
        ("uagv/v2/fleetsim/AGV-01/connection", json.dumps({"connectionState": "MAYBE"}).encode(), "invalid"),
        ("uagv/v2/fleetsim/GHOST-9/state", b"{}", "invalid"),
        ("uagv/v2/fleetsim/AGV-01/order", b"{}", None),  # not a topic the controller subscribes to
        ("somewhere/else", b"{}", None),
    ],
)
def test_hostile_messages_are_dropped_without_effect(
    small_map: FacilityMap, topic: str, payload: bytes, reason: str | None
) -> None:
    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    sim.run_for(2)
    order = sim.controller.submit_order("ST-A", "ST-B")
    before = {vid: (v.node, v.online) for vid, v in sim.controller.vehicles.items()}
    fleet.bus.publish(Outgoing(topic, payload, 0))
    sim.run_for(1)
    assert sum(fleet.master.dropped.values()) == (0 if reason is None else 1)
    if reason is not None:
        assert fleet.master.dropped[reason] == 1
        dropped = [s for s in fleet.master.metrics() if s.name == "fleet_vda5050_messages_dropped_total"]
        assert [(s.labels, s.value) for s in dropped] == [((("reason", reason),), 1)]
    assert {vid: v.online for vid, v in sim.controller.vehicles.items()} == {k: o for k, (_, o) in before.items()}
    assert set(sim.controller.vehicles) == {"AGV-01", "AGV-02"}
    sim.run_for(240)
    assert sim.controller.orders[order.id].state is OrderState.FINISHED


def test_state_of_unknown_vehicle_off_the_map_is_dropped(small_map: FacilityMap) -> None:
    sim, fleet = vda_sim(small_map, vehicles=1)
    ghost = json.loads(fleet.vehicles[0].current_state(0.0).payload)
    ghost |= {"serialNumber": "GHOST-9", "lastNodeId": "", "agvPosition": {**ghost["agvPosition"], "x": 500.0}}
    fleet.bus.publish(Outgoing("uagv/v2/fleetsim/GHOST-9/state", json.dumps(ghost).encode(), 0))
    sim.run_for(1)
    assert fleet.master.dropped["unplaced"] == 1
    assert "GHOST-9" not in sim.controller.vehicles


@pytest.mark.parametrize("protocol", ["direct", "vda5050"])
def test_cancel_while_driving_then_serve_the_next_order(small_map: FacilityMap, protocol: str) -> None:
    """An operator cancels an order its vehicle is driving to (VDA 5050: cancelOrder). The vehicle
    stops at its next node, stays in service, and the next order starts where it really stands
    (a vehicle rejects a first node more than 0.5 m away)."""
    sim = Simulation(small_map, SimConfig(vehicles=1, seed=4, protocol=protocol), demand_enabled=False)
    c = sim.controller
    sim.run_for(2)
    order = c.submit_order("ST-C", "ST-B")
    for _ in range(400):
        sim.step()
        v = sim.vehicles[0]
        if c.orders[order.id].state is OrderState.TO_PICKUP and v.moving:
            break
    c.cancel_order(order.id)
    sim.run_for(60)
    vehicle = c.vehicles["AGV-01"]
    assert c.orders[order.id].state is OrderState.CANCELLED
    assert vehicle.in_service and not vehicle.stopping
    assert not any(a.code == "drive-rejected" for a in c.alarms), c.alarms
    following = c.submit_order("ST-A", "ST-B")
    sim.run_for(300)
    assert c.orders[following.id].state is OrderState.FINISHED
    assert sim.oracle.claim_violations == [] and sim.oracle.collisions == []


def test_manual_mode_and_fatal_errors_make_a_vehicle_unavailable(small_map: FacilityMap) -> None:
    """A vehicle switched to MANUAL on its way to a pick-up hands the order back at once and the
    other vehicle takes it; a FATAL error raises an alarm and keeps the vehicle out of work."""
    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    sim.run_for(2)
    c = sim.controller
    order = c.submit_order("ST-A", "ST-B")
    for _ in range(200):
        sim.step()
        if c.orders[order.id].state is OrderState.TO_PICKUP:
            break
    first = c.orders[order.id].vehicle_id
    manual = next(v for v in fleet.vehicles if v.key.serial_number == first)
    manual.operating_mode = "MANUAL"
    sim.run_for(3)
    assert not c.vehicles[first or ""].available and c.vehicles[first or ""].mode == "MANUAL"
    assert c.orders[order.id].vehicle_id != first
    other = next(v for v in fleet.vehicles if v is not manual)
    other.hardware_errors.append({"errorType": "laserScannerFault", "errorLevel": "FATAL", "errorDescription": "dirty"})
    sim.run_for(2)
    assert any(a.code == "vehicle-error" and "laserScannerFault" in a.message for a in c.alarms)
    assert not c.vehicles[other.key.serial_number].available
    other.hardware_errors.clear()
    manual.operating_mode = "AUTOMATIC"
    sim.run_for(400)
    assert c.orders[order.id].state is OrderState.FINISHED


def test_emergency_pause_reaches_every_vehicle_over_vda5050(small_map: FacilityMap) -> None:
    """Fleet pause sends startPause to every vehicle (one instant action each) and nothing moves;
    stopPause lets the run finish its order."""
    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    c = sim.controller
    sim.run_for(2)
    order = c.submit_order("ST-A", "ST-B")
    sim.run_for(6)
    c.pause_fleet(True)
    sim.run_for(2)
    positions = [(v.x, v.y) for v in sim.vehicles]
    assert all(v.body.paused for v in fleet.vehicles)
    sim.run_for(30)
    assert [(v.x, v.y) for v in sim.vehicles] == positions
    assert c.orders[order.id].state is not OrderState.FINISHED
    c.pause_fleet(False)
    sim.run_for(300)
    assert c.orders[order.id].state is OrderState.FINISHED
    assert not any(v.body.paused for v in fleet.vehicles)


@pytest.mark.parametrize("protocol", ["direct", "vda5050"])
def test_init_position_moves_an_idle_vehicle_and_work_starts_there(small_map: FacilityMap, protocol: str) -> None:
    """An operator tells an idle vehicle it stands at PA3 (VDA 5050 initPosition): its claims
    move there and its next order starts from there, which the vehicle accepts."""
    sim = Simulation(small_map, SimConfig(vehicles=1, seed=4, protocol=protocol), demand_enabled=False)
    c = sim.controller
    sim.run_for(2)
    moved = c.init_position("AGV-01", "PA3")
    assert moved.node == "PA3" and c.traffic.held_by("AGV-01") == {"node:PA3"}
    sim.run_for(2)
    assert (sim.vehicles[0].x, sim.vehicles[0].y) == (15.0, 11.0)
    order = c.submit_order("ST-C", "ST-B")
    sim.run_for(300)
    assert c.orders[order.id].state is OrderState.FINISHED
    assert not any(a.code == "drive-rejected" for a in c.alarms)
    with pytest.raises(OrderRejected, match="unknown node"):
        c.init_position("AGV-01", "NOWHERE")


def test_pre_registered_vehicles_are_listed_before_they_report(small_map: FacilityMap) -> None:
    """Configured vehicles appear in the fleet at once: the one that reports is placed and works,
    the one that never reports stays listed, offline and without work."""
    from fleet.vda5050.master import MasterConfig, VehicleSettings

    config = MasterConfig(vehicles={"AGV-01": VehicleSettings(type_id="cart"), "AGV-09": VehicleSettings()})
    sim = Simulation(
        small_map, SimConfig(vehicles=1, seed=4, protocol="vda5050"), demand_enabled=False, master_config=config
    )
    c = sim.controller
    ghost = c.vehicles["AGV-09"]
    assert not ghost.placed and not ghost.online and not ghost.available
    assert c.vehicles["AGV-01"].placed and c.vehicles["AGV-01"].online
    c.pause_fleet(True)
    c.pause_fleet(False)
    order = c.submit_order("ST-A", "ST-B")
    sim.run_for(300)
    assert c.orders[order.id].state is OrderState.FINISHED
    assert c.orders[order.id].vehicle_id == "AGV-01"
    assert c.vehicles["AGV-09"].task is None and not c.vehicles["AGV-09"].placed


@pytest.mark.parametrize("protocol", ["direct", "vda5050"])
def test_closed_lane_is_driven_around_and_explained(small_map: FacilityMap, protocol: str) -> None:
    """With aisle A2-A3 closed, a transport from ST-A to ST-B goes through bay SD instead; with
    the bay closed too, the vehicle waits and says the lane is closed by the operator; opening it
    lets the transport finish."""
    drives: list[tuple[str, ...]] = []
    sim = Simulation(small_map, SimConfig(vehicles=1, seed=4, protocol=protocol), demand_enabled=False)
    sim.listeners.append(lambda cmds: drives.extend(c.nodes for c in cmds if isinstance(c, DriveNodes)))
    c = sim.controller
    sim.run_for(2)
    c.close_lane("A2-A3")
    first = c.submit_order("ST-A", "ST-B")
    sim.run_for(300)
    assert c.orders[first.id].state is OrderState.FINISHED
    driven = [n for seg in drives for n in seg]
    assert all((a, b) != ("A2", "A3") for a, b in itertools.pairwise(driven))
    assert "SD" in driven, "the detour through bay SD was taken"
    second = c.submit_order("ST-A", "ST-B")
    sim.run_for(5)
    c.close_lane("A2-SD")  # now ST-B cannot be reached from ST-A: the vehicle will wait at a closure
    sim.run_for(200)
    assert c.orders[second.id].state is not OrderState.FINISHED
    assert c.wait_reason("AGV-01") in ("lane A2-A3 closed by operator", "lane A2-SD closed by operator")
    c.close_lane("A2-A3", closed=False)
    sim.run_for(200)
    assert c.orders[second.id].state is OrderState.FINISHED
    assert any(a.code == "blocked-by-closure" for a in c.alarms)
    with pytest.raises(OrderRejected, match="unknown lane"):
        c.close_lane("NOPE")


def test_a_vehicle_restarted_during_its_pick_loses_the_order_and_picks_again(small_map: FacilityMap) -> None:
    """The vehicle's software restarts while it stands at the pick-up: it reports an empty
    orderId; the controller takes that as a lost order (order-lost alarm, nothing resent), has
    it pick again where it stands, and the transport finishes once."""
    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    sim.run_for(5)
    order = sim.controller.submit_order("ST-A", "ST-B")
    for _ in range(600):
        sim.step()
        if sim.controller.orders[order.id].state is OrderState.LOADING:
            break
    vid = sim.controller.orders[order.id].vehicle_id
    victim = next(v for v in fleet.vehicles if v.key.serial_number == vid)
    sim.run_for(3)  # the vehicle has reported the pick order: it has taken it
    assert sim.controller.orders[order.id].state is OrderState.LOADING
    assert victim.body.segment is None, "standing at the pick-up"
    lost_order = victim.order_id
    victim.restart(sim.clock.now())
    sim.run_for(240)
    done = sim.controller.orders[order.id]
    assert done.state is OrderState.FINISHED
    assert [t.state for t in done.history].count(OrderState.FINISHED) == 1
    assert any(a.code == "order-lost" and a.vehicle_id == vid for a in sim.controller.alarms)
    assert sim.controller.vehicles[vid].in_service
    assert victim.order_id != lost_order, "a new order, not the lost one again"


def test_a_vehicle_that_cannot_pause_is_not_believed_paused(small_map: FacilityMap) -> None:
    """A vehicle whose vendor left out startPause refuses it (FAILED): the controller undoes the
    pause it expected and raises command-refused with the vehicle's reason."""
    from sim.vda_vehicle import KNOWN_ACTIONS, VdaBehaviour

    sim, fleet = vda_sim(small_map, vehicles=1)
    sim.demand_enabled = False
    vehicle = fleet.vehicles[0]
    vehicle.behaviour = VdaBehaviour(supported=KNOWN_ACTIONS - {"startPause", "stopPause"})
    sim.run_for(5)
    vid = vehicle.key.serial_number
    sim.controller.pause_vehicle(vid, True)
    sim.run_for(5)
    assert not vehicle.body.paused
    assert sim.controller.vehicles[vid].paused is False
    refused = [a for a in sim.controller.alarms if a.code == "command-refused"]
    assert refused and "startPause" in refused[0].message
    order = sim.controller.submit_order("ST-A", "ST-B")
    sim.run_for(240)
    assert sim.controller.orders[order.id].state is OrderState.FINISHED


def test_a_vehicle_whose_factsheet_lists_no_pick_gets_no_orders(small_map: FacilityMap) -> None:
    """The factsheet is honoured: a vehicle that does not list pick is given no order (the
    operator sees what it lacks, in the API and an alarm); the other vehicle serves them."""
    from sim.vda_vehicle import KNOWN_ACTIONS, VdaBehaviour

    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    unable = fleet.vehicles[0]
    sim.run_for(2)
    unable.behaviour = VdaBehaviour(supported=KNOWN_ACTIONS - {"pick"})
    unable.publish_factsheet(sim.clock.now())  # its software was changed: it says so
    sim.run_for(3)
    vid = unable.key.serial_number
    assert sim.controller.vehicles[vid].lacks == ("pick",) and not sim.controller.vehicles[vid].available
    assert any(a.code == "vehicle-lacks" and a.vehicle_id == vid for a in sim.controller.alarms)
    orders = [sim.controller.submit_order("ST-A", "ST-B") for _ in range(2)]
    sim.run_for(600)
    assert all(sim.controller.orders[o.id].state is OrderState.FINISHED for o in orders)
    assert all(sim.controller.orders[o.id].vehicle_id != vid for o in orders)


def test_a_vehicle_that_stops_at_once_on_cancel_keeps_its_lane_and_drives_on(small_map: FacilityMap) -> None:
    """A vehicle that stops where it is on a cancel (as a vendor's did): it stands on the lane,
    the controller keeps that lane and the node ahead its own, never places it on an assumed
    node, and sends it on along the lane at once (a new order from its lastNodeId, accepted);
    its next transport finishes."""
    from fleet.traffic import lane_resource, node_resource
    from sim.vda_vehicle import VdaBehaviour

    sim, fleet = vda_sim(small_map, vehicles=2)
    sim.demand_enabled = False
    c = sim.controller
    for v in fleet.vehicles:
        v.behaviour = VdaBehaviour(stop_at_once=True)
    sim.run_for(5)
    order = c.submit_order("ST-C", "ST-B")
    for _ in range(800):
        sim.step()
        vid = c.orders[order.id].vehicle_id
        body = next((v.body for v in fleet.vehicles if v.key.serial_number == vid), None)
        if body is not None and body.moving and body.segment is not None:
            length = small_map.lane_between[body.segment].length
            if 1.0 < body.progress < length - 1.0:
                break
    else:
        pytest.fail("the vehicle never drove mid-lane")
    assert vid is not None and body.segment is not None
    behind, ahead = body.segment
    c.cancel_order(order.id)
    for _ in range(20):
        sim.step()
        if not c.vehicles[vid].stopping:
            break  # the vehicle reported the cancel done
    assert body.on_lane and body.speed == 0.0, "stopped on the lane"
    vehicle = c.vehicles[vid]
    assert vehicle.in_service and vehicle.node == behind
    assert c.traffic.holder(lane_resource(behind, ahead)) == vid
    assert c.traffic.holder(node_resource(ahead)) == vid
    sim.run_for(20)
    assert body.segment != (behind, ahead) and c.vehicles[vid].node != behind, "sent on, off the lane"
    following = c.submit_order("ST-A", "ST-B")
    sim.run_for(400)
    assert c.orders[following.id].state is OrderState.FINISHED
    assert not any(a.code in ("drive-rejected", "command-refused") for a in c.alarms), c.alarms
    assert sim.oracle.claim_violations == [] and sim.oracle.collisions == []
