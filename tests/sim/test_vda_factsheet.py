"""Factsheet limits honoured over VDA 5050 (in-process bus): a vehicle whose id length this
plant's orders exceed, or that is larger than its map type, gets no orders, and says why."""

from __future__ import annotations

import pytest

from fleet.model import OrderState
from maps import FacilityMap
from sim.fleets import VdaFleet
from sim.runner import SimConfig, Simulation
from sim.vda_vehicle import VdaBehaviour


@pytest.mark.parametrize(
    ("behaviour", "why"),
    [
        (VdaBehaviour(id_len=6), "ids up to 6 characters, but this plant sends"),
        (VdaBehaviour(size=(2.5, 3.0)), "2.5 x 3 m, larger than"),
        (VdaBehaviour(id_len=64, size=(0.6, 0.9)), None),
    ],
)
def test_a_vehicle_the_plant_cannot_meet_gets_no_orders(
    small_map: FacilityMap, behaviour: VdaBehaviour, why: str | None
) -> None:
    """Its factsheet's idLen below this plant's ids, or its size above its type's: `unfit` in
    the API, a `vehicle-unfit` alarm, no orders (the other vehicle serves them). Limits it can
    meet change nothing."""
    sim = Simulation(small_map, SimConfig(vehicles=2, seed=4, protocol="vda5050"), demand_enabled=False)
    assert isinstance(sim.fleet, VdaFleet)
    vehicle = sim.fleet.vehicles[0]
    vid = vehicle.key.serial_number
    sim.run_for(2)
    vehicle.behaviour = behaviour
    vehicle.publish_factsheet(sim.clock.now())
    sim.run_for(3)
    c = sim.controller
    orders = [c.submit_order("ST-A", "ST-B") for _ in range(3)]
    sim.run_for(900)
    assert all(c.orders[o.id].state is OrderState.FINISHED for o in orders)
    served = {c.orders[o.id].vehicle_id for o in orders}
    unfit = c.vehicles[vid].unfit
    if why is None:
        assert unfit == () and c.vehicles[vid].available
        assert not any(a.code == "vehicle-unfit" for a in c.alarms)
        return
    assert len(unfit) == 1 and why in unfit[0] and not c.vehicles[vid].available
    assert vid not in served
    (alarm,) = [a for a in c.alarms if a.code == "vehicle-unfit"]
    assert alarm.vehicle_id == vid and why in alarm.message


@pytest.mark.parametrize(
    ("lens", "nodes"),
    [({"order.nodes": 5}, 5), ({"order.edges": 2}, 3), ({"order.nodes": 6, "order.edges": 3}, 4), ({}, None)],
)
def test_the_tighter_of_the_node_and_edge_limits_bounds_an_order(
    small_map: FacilityMap, lens: dict[str, int], nodes: int | None
) -> None:
    """maxArrayLens: n nodes take n - 1 edges, so an edge limit of 2 allows 3 nodes; the tighter
    limit wins, and none stated leaves orders unbounded."""
    import json

    from fleet.vda5050.master import Outgoing

    sim = Simulation(small_map, SimConfig(vehicles=1, seed=4, protocol="vda5050"), demand_enabled=False)
    assert isinstance(sim.fleet, VdaFleet)
    vehicle = sim.fleet.vehicles[0]
    sim.run_for(2)
    vehicle.publish_factsheet(sim.clock.now())
    (message,) = [m for m in vehicle.take_outbox() if m.topic.endswith("/factsheet")]
    sheet = json.loads(message.payload)
    sheet["protocolLimits"] = {"maxArrayLens": lens}
    topic = f"uagv/v2/{vehicle.key.manufacturer}/{vehicle.key.serial_number}/factsheet"
    sim.fleet.bus.publish(Outgoing(topic, json.dumps(sheet).encode(), 1), vehicle.key.serial_number)
    sim.run_for(1)
    assert sim.fleet.master.links[vehicle.key.serial_number].max_nodes == nodes
