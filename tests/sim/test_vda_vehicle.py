"""The simulated VDA 5050 vehicle follows the specification's acceptance rules and reports valid states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fleet.events import ActionKind
from fleet.vda5050.link import VehicleLink
from fleet.vda5050.messages import to_wire
from fleet.vda5050.schemas import schema_errors
from fleet.vda5050.topics import VehicleKey
from maps import FacilityMap
from sim.vda_vehicle import VdaSimVehicle
from sim.vehicle import lane_geometry_for

KEY = VehicleKey("acme", "AGV-01")


def vehicle(fmap: FacilityMap, node: str = "A1") -> VdaSimVehicle:
    vtype = fmap.vehicle_types[0]
    return VdaSimVehicle(KEY, fmap, vtype, lane_geometry_for(fmap, vtype.max_speed), node, 0.9)


def send(v: VdaSimVehicle, topic: str, message: Any, now: float = 0.0) -> None:
    v.on_message(f"uagv/v2/acme/AGV-01/{topic}", json.dumps(to_wire(message)).encode(), now)


def last_state(v: VdaSimVehicle, now: float) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(v.current_state(now).payload)
    return state


def run(v: VdaSimVehicle, seconds: float, start: float = 0.0) -> float:
    t = start
    while t < start + seconds:
        t += 0.5
        v.step(0.5, t)
    v.take_outbox()
    return t


def test_drives_only_the_base_and_stops_at_its_end(small_map: FacilityMap) -> None:
    v = vehicle(small_map)
    link = VehicleLink(KEY, small_map, node="A1")
    send(v, "order", link.drive(("A2",), horizon=["A3", "A4"], now=0.0))
    t = run(v, 30)
    state = last_state(v, t)
    assert (state["lastNodeId"], state["driving"]) == ("A2", False)
    assert [n["nodeId"] for n in state["nodeStates"]] == ["A3", "A4"]
    assert all(not n["released"] for n in state["nodeStates"])
    send(v, "order", link.drive(("A3",), horizon=["A4"], now=t), t)
    t = run(v, 30, t)
    assert last_state(v, t)["lastNodeId"] == "A3"


def test_states_validate_against_both_schema_versions(small_map: FacilityMap, vda5050_schemas: Path) -> None:
    for version in ("2.0.0", "2.1.0"):
        v = vehicle(small_map)
        v.version = version
        link = VehicleLink(KEY, small_map, node="A1", version=version)
        send(v, "order", link.drive(("A2",), horizon=["A3"], now=0.0))
        run(v, 5)
        v.step(0.5, 6.0)
        for message in v.take_outbox():
            topic = message.topic.rsplit("/", 1)[-1]
            assert schema_errors(version, topic, json.loads(message.payload), vda5050_schemas) == [], topic


@pytest.mark.parametrize(
    ("tamper", "error_type"),
    [
        ("stale_update", "orderUpdateError"),
        ("wrong_stitch", "orderUpdateError"),
        ("far_first_node", "noRouteError"),
        ("unknown_action", "validationError"),
    ],
)
def test_rejects_orders_by_the_rules(small_map: FacilityMap, tamper: str, error_type: str) -> None:
    v = vehicle(small_map)
    link = VehicleLink(KEY, small_map, node="A1")
    first = link.drive(("A2",), horizon=[], now=0.0)
    if tamper in ("stale_update", "wrong_stitch"):
        send(v, "order", first)
        update = link.drive(("A3",), horizon=[], now=1.0)
        if tamper == "stale_update":
            send(v, "order", update.model_copy(update={"order_update_id": 2}), 1.0)
            bad = update.model_copy(update={"order_update_id": 1})
        else:
            nodes = list(update.nodes)
            nodes[0] = nodes[0].model_copy(update={"node_id": "A1", "sequence_id": 0})
            bad = update.model_copy(update={"nodes": nodes})
        send(v, "order", bad, 2.0)
    elif tamper == "far_first_node":
        send(v, "order", VehicleLink(KEY, small_map, node="A5").drive(("A6",), horizon=[], now=0.0))
    else:
        order = link.node_action(ActionKind.PICK, "ST-A", now=0.0)
        nodes = list(order.nodes)
        action = nodes[0].actions[0].model_copy(update={"action_type": "teleport"})
        nodes[0] = nodes[0].model_copy(update={"actions": [action]})
        send(v, "order", order.model_copy(update={"nodes": nodes}))
    errors = last_state(v, 3.0)["errors"]
    assert [e["errorType"] for e in errors] == [error_type]
    assert errors[0]["errorReferences"][0]["referenceKey"] == "orderId"


def test_pick_runs_its_service_time_then_finishes(small_map: FacilityMap) -> None:
    v = vehicle(small_map, node="SA")
    link = VehicleLink(KEY, small_map, node="SA")
    order = link.node_action(ActionKind.PICK, "ST-A", now=0.0)
    send(v, "order", order)
    action_id = order.nodes[0].actions[0].action_id
    status = {a["actionId"]: a["actionStatus"] for a in last_state(v, 0.0)["actionStates"]}
    assert status[action_id] == "RUNNING"
    t = run(v, 14.5)
    assert {a["actionId"]: a["actionStatus"] for a in last_state(v, t)["actionStates"]}[action_id] == "RUNNING"
    t = run(v, 1.0, t)
    assert {a["actionId"]: a["actionStatus"] for a in last_state(v, t)["actionStates"]}[action_id] == "FINISHED"


def test_pause_and_cancel(small_map: FacilityMap) -> None:
    v = vehicle(small_map)
    link = VehicleLink(KEY, small_map, node="A1")
    send(v, "order", link.drive(("A2", "A3", "A4"), horizon=[], now=0.0))
    t = run(v, 2)
    send(v, "instantActions", link.instant("startPause", t), t)
    x = v.body.x
    t = run(v, 5, t)
    assert v.body.x == x and last_state(v, t)["paused"] is True
    send(v, "instantActions", link.instant("stopPause", t), t)
    send(v, "instantActions", link.instant("cancelOrder", t), t)
    t = run(v, 30, t)
    state = last_state(v, t)
    assert state["lastNodeId"] == "A2", "stops at the next node after a cancel"
    assert state["driving"] is False
