"""VDA 5050 on the controller side: what we send validates against the official schemas, and
vehicle states turn into the right core events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fleet.events import (
    ActionFinished,
    ActionKind,
    BaseRequested,
    CommandRefused,
    DriveRejected,
    NodeReached,
    OrderLost,
    StateReport,
    VehicleMoved,
    VehicleStatus,
)
from fleet.vda5050.link import VehicleLink
from fleet.vda5050.messages import Order, State, Visualization, parse_message, timestamp, to_wire
from fleet.vda5050.schemas import schema_errors
from fleet.vda5050.topics import TopicLayout, VehicleKey
from maps import FacilityMap, parse_map

VERSIONS = ("2.0.0", "2.1.0")


def link(fmap: FacilityMap, version: str = "2.0.0") -> VehicleLink:
    return VehicleLink(VehicleKey("acme", "AGV-01"), fmap, node="A1", version=version)


def state_for(order: Order, last_node: str, last_seq: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "headerId": 1,
        "timestamp": "2026-11-23T08:00:00.000Z",
        "version": order.version,
        "manufacturer": "acme",
        "serialNumber": "AGV-01",
        "orderId": order.order_id,
        "orderUpdateId": order.order_update_id,
        "lastNodeId": last_node,
        "lastNodeSequenceId": last_seq,
        "nodeStates": [],
        "edgeStates": [],
        "driving": False,
        "actionStates": [],
        "batteryState": {"batteryCharge": 80.0, "charging": False},
        "operatingMode": "AUTOMATIC",
        "errors": [],
        "safetyState": {"eStop": "NONE", "fieldViolation": False},
        "agvPosition": {"x": 6.0, "y": 0.0, "theta": 0.0, "mapId": "small_test", "positionInitialized": True},
    }
    body.update(extra)
    return body


@pytest.mark.parametrize("version", VERSIONS)
def test_orders_and_updates_validate_and_stitch(small_map: FacilityMap, version: str, vda5050_schemas: Path) -> None:
    """A new order starts at the vehicle's node; the update repeats the last base node as stitching
    node with its sequence id; nodes even, edges odd; horizon nodes are not released."""
    lk = link(small_map, version)
    first = lk.drive(("A2", "A3"), horizon=["A4", "A5"], now=0.0)
    assert [(n.node_id, n.sequence_id, n.released) for n in first.nodes] == [
        ("A1", 0, True),
        ("A2", 2, True),
        ("A3", 4, True),
        ("A4", 6, False),
        ("A5", 8, False),
    ]
    assert [(e.start_node_id, e.end_node_id, e.sequence_id, e.released) for e in first.edges] == [
        ("A1", "A2", 1, True),
        ("A2", "A3", 3, True),
        ("A3", "A4", 5, False),
        ("A4", "A5", 7, False),
    ]
    update = lk.drive(("A4",), horizon=["A5"], now=1.0)
    assert (update.order_id, update.order_update_id) == (first.order_id, 1)
    assert [(n.node_id, n.sequence_id, n.released) for n in update.nodes] == [
        ("A3", 4, True),
        ("A4", 6, True),
        ("A5", 8, False),
    ]
    assert update.header_id == first.header_id + 1
    for message in (first, update):
        assert schema_errors(version, "order", to_wire(message), vda5050_schemas) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_action_orders_and_instant_actions_validate(
    small_map: FacilityMap, version: str, vda5050_schemas: Path
) -> None:
    lk = link(small_map, version)
    lk.drive(("SA",), horizon=[], now=0.0)
    pick = lk.node_action(ActionKind.PICK, "ST-A", now=1.0)
    assert [n.node_id for n in pick.nodes] == ["SA"] and pick.edges == []
    assert pick.nodes[0].actions[0].action_type == "pick"
    assert schema_errors(version, "order", to_wire(pick), vda5050_schemas) == []
    for action_type in ("cancelOrder", "startPause", "stopPause", "stateRequest", "factsheetRequest"):
        message = lk.instant(action_type, now=2.0)
        assert len(message.actions) == 1
        assert schema_errors(version, "instantActions", to_wire(message), vda5050_schemas) == []


def test_schema_check_is_not_a_rubber_stamp(small_map: FacilityMap, vda5050_schemas: Path) -> None:
    """A message missing a required field or with a wrong enum fails the official schema."""
    wire = to_wire(link(small_map).drive(("A2",), horizon=[], now=0.0))
    del wire["orderUpdateId"]
    wire["nodes"][0]["released"] = "yes"
    errors = schema_errors("2.0.0", "order", wire, vda5050_schemas)
    assert any("orderUpdateId" in e for e in errors)
    assert any(e.startswith("nodes/0/released") for e in errors)


def test_state_becomes_node_and_action_events(small_map: FacilityMap) -> None:
    lk = link(small_map)
    order = lk.drive(("A2", "A3"), horizon=[], now=0.0)
    events, _ = lk.on_state(State.model_validate(state_for(order, "A3", 4)), now=1.0)
    assert [e for e in events if isinstance(e, NodeReached)] == [
        NodeReached("AGV-01", "A2"),
        NodeReached("AGV-01", "A3"),
    ]
    again, _ = lk.on_state(State.model_validate(state_for(order, "A3", 4)), now=2.0)
    assert not [e for e in again if isinstance(e, NodeReached)], "each node is reported once"
    report = next(e for e in events if isinstance(e, StateReport))
    assert (report.x, report.battery) == (6.0, 0.8)

    pick = lk.node_action(ActionKind.PICK, "ST-A", now=3.0)
    action_id = pick.nodes[0].actions[0].action_id
    running = state_for(pick, "A3", 0, actionStates=[{"actionId": action_id, "actionStatus": "RUNNING"}])
    assert not [e for e in lk.on_state(State.model_validate(running), 4.0)[0] if isinstance(e, ActionFinished)]
    done = state_for(pick, "A3", 0, actionStates=[{"actionId": action_id, "actionStatus": "FINISHED"}])
    finished = [e for e in lk.on_state(State.model_validate(done), 5.0)[0] if isinstance(e, ActionFinished)]
    assert finished == [ActionFinished("AGV-01", ActionKind.PICK, True, None)]
    assert not [e for e in lk.on_state(State.model_validate(done), 6.0)[0] if isinstance(e, ActionFinished)]


def test_stale_state_of_another_order_moves_nothing(small_map: FacilityMap) -> None:
    """A vehicle still reporting its previous order's lastNodeId is not taken as progress."""
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    stale = state_for(order, "A2", 2, orderId="old-order")
    events, _ = lk.on_state(State.model_validate(stale), 1.0)
    assert not [e for e in events if isinstance(e, NodeReached)]


def test_rejection_error_names_our_order(small_map: FacilityMap) -> None:
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    error = {
        "errorType": "noRouteError",
        "errorLevel": "WARNING",
        "errorReferences": [{"referenceKey": "orderId", "referenceValue": order.order_id}],
        "errorDescription": "first node too far away",
    }
    events, _ = lk.on_state(State.model_validate(state_for(order, "A1", 0, errors=[error])), 1.0)
    assert DriveRejected("AGV-01", "noRouteError: first node too far away") in events
    events, _ = lk.on_state(State.model_validate(state_for(order, "A1", 0, errors=[error])), 2.0)
    assert not [e for e in events if isinstance(e, DriveRejected)], "a stale error is reported once"


def _update_error(order: Order, update_id: int) -> dict[str, Any]:
    return {
        "errorType": "orderUpdateError",
        "errorLevel": "WARNING",
        "errorReferences": [
            {"referenceKey": "orderId", "referenceValue": order.order_id},
            {"referenceKey": "orderUpdateId", "referenceValue": str(update_id)},
        ],
        "errorDescription": "orderUpdateId older than the current one",
    }


def test_refused_copy_of_a_superseded_update_is_no_rejection(small_map: FacilityMap) -> None:
    """A resend that crosses the original: the vehicle drives update 2 and refuses the late copy
    of update 1, as VDA 5050 requires. It has everything, so the refusal is no rejection of its
    path; a refusal of the newest update still is."""
    lk = link(small_map)
    lk.drive(("A2",), horizon=[], now=0.0)
    first_update = lk.drive(("A3",), horizon=[], now=1.0)
    newest = lk.drive(("A4",), horizon=[], now=2.0)
    copy_refused = state_for(newest, "A2", 2, errors=[_update_error(first_update, 1)])
    events, _ = lk.on_state(State.model_validate(copy_refused), 3.0)
    assert not [e for e in events if isinstance(e, DriveRejected)]
    behind = state_for(first_update, "A2", 2, errors=[_update_error(newest, 2)])
    events, _ = lk.on_state(State.model_validate(behind), 4.0)
    assert [e for e in events if isinstance(e, DriveRejected)], "the vehicle refused what it lacks"


def test_charging_stops_at_the_requested_charge(small_map: FacilityMap) -> None:
    """stopCharging goes once the vehicle, charging, reports the charge asked for; the charge
    ends when the vehicle reports it no longer charges."""
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    lk.start_charging(0.9, now=1.0)
    low = state_for(order, "A2", 2, batteryState={"batteryCharge": 50.0, "charging": True})
    events, replies = lk.on_state(State.model_validate(low), 2.0)
    assert replies == [] and not [e for e in events if isinstance(e, ActionFinished)]
    full = state_for(order, "A2", 2, batteryState={"batteryCharge": 91.0, "charging": True})
    events, replies = lk.on_state(State.model_validate(full), 3.0)
    assert [r.actions[0].action_type for r in replies] == ["stopCharging"]
    assert not [e for e in events if isinstance(e, ActionFinished)], "not before the vehicle stops charging"
    ended = state_for(order, "A2", 2, batteryState={"batteryCharge": 91.0, "charging": False})
    events, _ = lk.on_state(State.model_validate(ended), 4.0)
    assert ActionFinished("AGV-01", ActionKind.CHARGE) in events


def test_a_charge_the_vehicle_never_starts_is_never_stopped_nor_done(small_map: FacilityMap) -> None:
    """A full vehicle that does not start charging (it refused, or said nothing) gets no
    stopCharging and no finished charge; its refusal comes back as CommandRefused."""
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    start = lk.start_charging(0.9, now=1.0)
    full = state_for(order, "A2", 2, batteryState={"batteryCharge": 100.0, "charging": False})
    events, replies = lk.on_state(State.model_validate(full), 2.0)
    assert replies == [] and not [e for e in events if isinstance(e, ActionFinished)]
    action_id = start.actions[0].action_id
    failed = state_for(
        order,
        "A2",
        2,
        batteryState={"batteryCharge": 100.0, "charging": False},
        actionStates=[{"actionId": action_id, "actionType": "startCharging", "actionStatus": "FAILED"}],
    )
    events, replies = lk.on_state(State.model_validate(failed), 3.0)
    assert [e for e in events if isinstance(e, CommandRefused)] == [CommandRefused("AGV-01", "startCharging", "failed")]
    assert lk.stop_charging(4.0) is None, "no charge of ours runs"


def test_an_instant_action_refused_by_header_or_unanswered_is_given_up(small_map: FacilityMap) -> None:
    """An error naming the instantActions message's headerId refuses its action; an action the
    vehicle never mentions is given up after the timeout."""
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    pause = lk.instant("startPause", 1.0)
    error = {
        "errorType": "validationError",
        "errorLevel": "WARNING",
        "errorReferences": [
            {"referenceKey": "topic", "referenceValue": "instantActions"},
            {"referenceKey": "headerId", "referenceValue": str(pause.header_id)},
        ],
        "errorDescription": "bad key",
    }
    events, _ = lk.on_state(State.model_validate(state_for(order, "A1", 0, errors=[error])), 2.0)
    assert CommandRefused("AGV-01", "startPause", "validationError: bad key") in events
    lk.instant("stopPause", 3.0)
    assert lk.tick(20.0) == []
    assert lk.tick(33.0) == [CommandRefused("AGV-01", "stopPause", "no answer in 30 s")]
    assert lk.tick(40.0) == [], "once"


def test_a_charge_stopped_for_an_order_ends_when_the_vehicle_stops_charging(small_map: FacilityMap) -> None:
    """A charge stopped early ends with the first state that no longer shows charging, once."""
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    assert lk.stop_charging(0.5) is None, "no charge of ours runs"
    lk.start_charging(0.9, now=1.0)
    stop = lk.stop_charging(2.0)
    assert stop is not None and [a.action_type for a in stop.actions] == ["stopCharging"]
    still = state_for(order, "A2", 2, batteryState={"batteryCharge": 50.0, "charging": True})
    events, replies = lk.on_state(State.model_validate(still), 3.0)
    assert not [e for e in events if isinstance(e, ActionFinished)] and replies == []
    low = state_for(order, "A2", 2, batteryState={"batteryCharge": 50.0, "charging": False})
    events, replies = lk.on_state(State.model_validate(low), 3.5)
    assert ActionFinished("AGV-01", ActionKind.CHARGE) in events and replies == []
    events, _ = lk.on_state(State.model_validate(low), 4.0)
    assert not [e for e in events if isinstance(e, ActionFinished)], "once"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"headerId": 1, "timestamp": "2026',  # truncated
        json.dumps({"headerId": "one"}).encode(),  # wrong type, missing fields
        b"[]",
        b"\xff\xfe not json",
    ],
)
def test_malformed_state_is_an_error(payload: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_message("state", payload)


def test_unknown_fields_are_ignored_and_wire_round_trips(small_map: FacilityMap) -> None:
    order = link(small_map).drive(("A2",), horizon=[], now=0.0)
    body = state_for(order, "A1", 0, vendorExtension={"foo": 1})
    state = parse_message("state", json.dumps(body).encode())
    assert isinstance(state, State)
    wire = to_wire(state)
    body.pop("vendorExtension")
    assert wire == body


def test_topics() -> None:
    layout = TopicLayout()
    key = VehicleKey("acme", "AGV-01")
    assert layout.topic(key, "order") == "uagv/v2/acme/AGV-01/order"
    assert layout.parse("uagv/v2/acme/AGV-01/state") == (key, "state")
    assert layout.parse("uagv/v1/acme/AGV-01/state") is None
    assert layout.parse("uagv/v2/acme/state") is None
    assert "uagv/v2/+/+/connection" in layout.subscriptions()
    with pytest.raises(ValueError, match="MQTT topic"):
        VehicleKey("acme", "a/b")


def test_position_from_visualization_and_instant_action_status(small_map: FacilityMap) -> None:
    """A vehicle that reports its position only on visualization still moves on the map; the
    status of an instant action is followed until the vehicle reports it finished."""
    lk = link(small_map)
    order = lk.drive(("A2",), horizon=[], now=0.0)
    lk.on_state(State.model_validate(state_for(order, "A1", 0)), 0.5)
    viz = parse_message(
        "visualization",
        json.dumps(
            {"agvPosition": {"x": 3.0, "y": 0.0, "theta": 0.0, "mapId": "small_test", "positionInitialized": True}}
        ).encode(),
    )
    assert isinstance(viz, Visualization)
    assert lk.on_visualization(viz) == [StateReport("AGV-01", 3.0, 0.0, 0.0, 0.8)]
    pause = lk.instant("startPause", now=1.0)
    action_id = pause.actions[0].action_id
    assert lk.instant_status[action_id] == "SENT"
    done = state_for(order, "A1", 0, actionStates=[{"actionId": action_id, "actionStatus": "FINISHED"}])
    lk.on_state(State.model_validate(done), 2.0)
    assert lk.instant_status[action_id] == "FINISHED"


def test_pre_registered_settings_and_closed_fleet(small_map: FacilityMap) -> None:
    """A pre-registered vehicle gets its configured header version whatever it sends; with
    admit_unknown off, a vehicle not listed is dropped."""
    from fleet.vda5050.master import MasterConfig, MasterControl, VehicleAppeared, VehicleSettings

    config = MasterConfig(vehicles={"AGV-01": VehicleSettings(version="2.1.0", type_id="cart")}, admit_unknown=False)
    master = MasterControl(small_map, config)
    order = link(small_map).drive(("A2",), horizon=[], now=0.0)
    body = state_for(order, "A1", 0)  # says version 2.0.0
    appeared = master.on_message("uagv/v2/acme/AGV-01/state", json.dumps(body).encode(), 0.0)
    assert VehicleAppeared("AGV-01", "A1", 0.8, "cart") in appeared
    sent = [json.loads(m.payload) for m in master.take_outbox()]
    assert sent and all(m["version"] == "2.1.0" for m in sent)
    stranger = body | {"serialNumber": "AGV-77"}
    assert master.on_message("uagv/v2/acme/AGV-77/state", json.dumps(stranger).encode(), 0.0) == []
    assert master.dropped["unknown_vehicle"] == 1


def test_header_ids_keep_counting_before_a_vehicle_is_placed(small_map: FacilityMap) -> None:
    """A vehicle that comes ONLINE twice before its first state gets stateRequests with headerIds
    0 and 1, and the factsheetRequest after its state continues at 2 (sec. 6.2: per topic)."""
    from fleet.vda5050.master import MasterControl

    master = MasterControl(small_map)
    online = {
        "headerId": 0,
        "timestamp": "2026-11-23T08:00:00.000Z",
        "version": "2.0.0",
        "manufacturer": "acme",
        "serialNumber": "AGV-01",
        "connectionState": "ONLINE",
    }
    for header in (0, 1):
        master.on_message("uagv/v2/acme/AGV-01/connection", json.dumps(online | {"headerId": header}).encode(), 0.0)
    order = link(small_map).drive(("A2",), horizon=[], now=0.0)
    master.on_message("uagv/v2/acme/AGV-01/state", json.dumps(state_for(order, "A1", 0)).encode(), 1.0)
    sent = [json.loads(m.payload) for m in master.take_outbox()]
    assert [(m["actions"][0]["actionType"], m["headerId"]) for m in sent] == [
        ("stateRequest", 0),
        ("stateRequest", 1),
        ("factsheetRequest", 2),
    ]


def test_updates_a_vehicle_missed_are_sent_again_in_order(small_map: FacilityMap) -> None:
    """The vehicle's state still names update 0 of our order after we sent 1 and 2 (a broker died
    with them): after the grace period both go again, in order, under new headerIds; nothing is
    repeated while the vehicle is up to date or within the grace period."""
    from fleet.vda5050.link import RESEND_AFTER_S

    lk = link(small_map)
    first = lk.drive(("A2",), horizon=[], now=0.0)
    lk.drive(("A3",), horizon=[], now=1.0)
    third = lk.drive(("A4",), horizon=[], now=2.0)

    def behind(made: float) -> State:
        return State.model_validate(state_for(first, "A2", 2, timestamp=timestamp(made)))

    assert lk.missed_orders(behind(2.5), now=2.5) == [], "within the grace period"
    assert lk.missed_orders(behind(2.5), now=60.0) == [], "a state made in the grace period, read late"
    resent = lk.missed_orders(behind(2.0 + RESEND_AFTER_S), now=2.0 + RESEND_AFTER_S)
    assert [o.order_update_id for o in resent] == [1, 2]
    assert [o.header_id for o in resent] == [third.header_id + 1, third.header_id + 2]
    assert resent[0].nodes[0].node_id == "A2" and resent[1].nodes[0].node_id == "A3", "each stitches on"
    current = State.model_validate(state_for(third, "A3", 4))
    assert lk.missed_orders(current, now=100.0) == []


def test_an_update_that_waited_in_our_queue_is_not_taken_for_lost(small_map: FacilityMap) -> None:
    """An update made at t=1 that the MQTT client handed to the broker only at t=20 (our loop was
    busy): states made before 20 + the grace period cannot show it arrived, so nothing is resent;
    resending it would give the vehicle an older update after the newer one, which it must refuse."""
    from fleet.vda5050.link import RESEND_AFTER_S

    lk = link(small_map)
    first = lk.drive(("A2",), horizon=[], now=0.0)
    lk.drive(("A3",), horizon=[], now=1.0)
    lk.published("uagv/v2/acme/AGV-01/order", 20.0)
    stale = State.model_validate(state_for(first, "A2", 2, timestamp=timestamp(21.0)))
    assert lk.missed_orders(stale, now=30.0) == []
    later = State.model_validate(state_for(first, "A2", 2, timestamp=timestamp(20.0 + RESEND_AFTER_S + 0.1)))
    assert [o.order_update_id for o in lk.missed_orders(later, now=30.0)] == [1]


def test_simulated_vehicle_catches_up_from_resent_updates(small_map: FacilityMap) -> None:
    from sim.vda_vehicle import VdaSimVehicle
    from sim.vehicle import lane_geometry_for

    vtype = small_map.vehicle_types[0]
    vehicle = VdaSimVehicle(
        VehicleKey("acme", "AGV-01"), small_map, vtype, lane_geometry_for(small_map, 1.5), "A1", 1.0
    )
    lk = link(small_map)
    deliver = lambda o, t: vehicle.on_message("uagv/v2/acme/AGV-01/order", json.dumps(to_wire(o)).encode(), t)  # noqa: E731
    deliver(lk.drive(("A2",), horizon=[], now=0.0), 0.0)
    lk.drive(("A3",), horizon=[], now=1.0)  # lost
    lk.drive(("A4",), horizon=[], now=2.0)  # lost
    state = State.model_validate(json.loads(vehicle.current_state(10.0).payload))
    for order in lk.missed_orders(state, now=10.0):
        deliver(order, 10.0)
    t = 10.0
    for _ in range(120):
        t += 0.5
        vehicle.step(0.5, t)
    final = json.loads(vehicle.current_state(t).payload)
    assert (final["lastNodeId"], final["orderUpdateId"], final["errors"]) == ("A4", 2, [])


def test_a_base_released_by_an_earlier_run_is_adopted(small_map: FacilityMap) -> None:
    """A vehicle first seen mid-base (the controller restarted): the link takes over its order, the
    remaining released nodes come back in order, its progress reaches the core, and the next
    release is an update of that order stitched onto the last base node."""
    earlier = VehicleLink(VehicleKey("acme", "AGV-01"), small_map, node="A1", order_prefix="old-")
    order = earlier.drive(("A2", "A3", "A4"), horizon=["A5"], now=0.0)
    pending = [{"nodeId": n.node_id, "sequenceId": n.sequence_id, "released": n.released} for n in order.nodes[2:]]
    first_seen = State.model_validate(state_for(order, "A2", 2, nodeStates=pending, driving=True))
    lk = VehicleLink(VehicleKey("acme", "AGV-01"), small_map, node="A2", order_prefix="new-")
    assert lk.adopt(first_seen) == ["A3", "A4"], "released nodes only, in sequence order"
    events, _ = lk.on_state(State.model_validate(state_for(order, "A3", 4, nodeStates=pending[1:])), 1.0)
    assert [e for e in events if isinstance(e, NodeReached)] == [NodeReached("AGV-01", "A3")]
    update = lk.drive(("A5",), horizon=[], now=2.0)
    assert update.order_id == order.order_id and update.order_update_id == order.order_update_id + 1
    assert [(n.node_id, n.sequence_id) for n in update.nodes] == [("A4", 6), ("A5", 8)]
    idle = State.model_validate(state_for(order, "A4", 6))
    fresh = VehicleLink(VehicleKey("acme", "AGV-01"), small_map, node="A4", order_prefix="new-")
    assert fresh.adopt(idle) == [] and fresh.order_id is None, "nothing left to drive: nothing adopted"
    assert fresh.drive(("A5",), horizon=[], now=3.0).order_id == "AGV-01-new-000001"


def test_an_order_the_vehicle_took_and_no_longer_reports_is_lost_not_resent(small_map: FacilityMap) -> None:
    """Once the vehicle has reported our order, a state with an empty orderId (it restarted) is a
    lost order: OrderLost where it stands, nothing resent; the next drive is a new order there."""
    lk = link(small_map)
    first = lk.drive(("A2", "A3"), horizon=[], now=0.0)
    before = state_for(first, "A1", 0, orderId="", orderUpdateId=0)
    events, _ = lk.on_state(State.model_validate(before), 1.0)
    assert not [e for e in events if isinstance(e, OrderLost)], "not taken yet: a message may be in flight"
    taken = state_for(first, "A2", 2)
    lk.on_state(State.model_validate(taken), 2.0)
    restarted = state_for(first, "A2", 0, orderId="", orderUpdateId=0)
    events, _ = lk.on_state(State.model_validate(restarted), 10.0)
    assert OrderLost("AGV-01", "A2") in events
    assert lk.missed_orders(State.model_validate(restarted), 10.0) == [], "nothing of the lost order is resent"
    again = lk.drive(("A3",), horizon=[], now=11.0)
    assert again.order_id != first.order_id and again.order_update_id == 0 and again.nodes[0].node_id == "A2"


def test_the_factsheet_node_limit_cuts_the_horizon_never_the_base(small_map: FacilityMap) -> None:
    """With at most 4 nodes an order: a release of 2 nodes after the start keeps 1 of its 3
    horizon nodes; the base is sent whole."""
    lk = link(small_map)
    lk.max_nodes = 4
    order = lk.drive(("A2", "A3"), horizon=["A4", "A5", "A6"], now=0.0)
    assert [n.node_id for n in order.nodes] == ["A1", "A2", "A3", "A4"]
    assert [n.released for n in order.nodes] == [True, True, True, False]
    assert len(order.edges) == 3


@pytest.mark.parametrize("version", VERSIONS)
def test_nodes_carry_the_heading_and_deviation_the_map_defines(
    small_map_data: dict[str, Any], version: str, vda5050_schemas: Path
) -> None:
    """A map node with a required heading and a tight deviation (a docking point) is sent with
    theta, allowedDeviationXY and allowedDeviationTheta; the other nodes with the default
    deviation and no heading; the order is schema-valid."""
    dock = next(n for n in small_map_data["nodes"] if n["id"] == "A2")
    dock.update(theta=1.5708, allowed_deviation_xy=0.05, allowed_deviation_theta=0.1)
    lk = link(parse_map(small_map_data, source="test"), version)
    order = lk.drive(("A2", "A3"), horizon=[], now=0.0)
    positions = {n.node_id: n.node_position for n in order.nodes}
    a2, a3 = positions["A2"], positions["A3"]
    assert a2 is not None and (a2.theta, a2.allowed_deviation_xy, a2.allowed_deviation_theta) == (1.5708, 0.05, 0.1)
    assert a3 is not None and (a3.theta, a3.allowed_deviation_xy, a3.allowed_deviation_theta) == (None, 0.5, None)
    assert schema_errors(version, "order", to_wire(order), vda5050_schemas) == []


def test_safety_stops_error_hints_and_base_requests_become_events(small_map: FacilityMap) -> None:
    """A manual e-stop with a field violation is a status with that stop's cause; an error's
    2.1 errorHint is in its text; newBaseRequest is one BaseRequested until the vehicle clears it."""
    lk = link(small_map, "2.1.0")
    order = lk.drive(("A2", "A3"), horizon=[], now=0.0)
    hint = [{"errorType": "lowBattery", "errorLevel": "WARNING", "errorDescription": "12 %", "errorHint": "charge"}]
    stopped = state_for(
        order,
        "A1",
        0,
        safetyState={"eStop": "MANUAL", "fieldViolation": True},
        errors=hint,
        newBaseRequest=True,
    )
    events, _ = lk.on_state(State.model_validate(stopped), now=1.0)
    status = next(e for e in events if isinstance(e, VehicleStatus))
    assert status.safety_stop == "e-stop (MANUAL), protective field violated"
    assert status.errors == ("WARNING lowBattery: 12 % (hint: charge)",)
    assert [e for e in events if isinstance(e, BaseRequested)] == [BaseRequested("AGV-01")]
    again, _ = lk.on_state(State.model_validate(stopped), now=2.0)
    assert not [e for e in again if isinstance(e, (BaseRequested, VehicleStatus))], "nothing new"
    released = state_for(order, "A1", 0, errors=hint)
    cleared = next(e for e in lk.on_state(State.model_validate(released), now=3.0)[0] if isinstance(e, VehicleStatus))
    assert cleared.safety_stop is None


def test_a_vehicle_moved_by_hand_is_re_placed_where_it_reports(small_map: FacilityMap) -> None:
    """Its order driven to A3, the vehicle reports standing still at A5: one VehicleMoved to A5,
    and its next order starts there. Driving, or standing off every node, moves nothing."""
    lk = link(small_map)
    order = lk.drive(("A2", "A3"), horizon=[], now=0.0)
    at_a3 = {"x": 12.0, "y": 0.0, "theta": 0.0, "mapId": "small_test", "positionInitialized": True}
    arrived, _ = lk.on_state(State.model_validate(state_for(order, "A3", 4, agvPosition=at_a3)), now=1.0)
    assert not [e for e in arrived if isinstance(e, VehicleMoved)]
    at_a5 = {**at_a3, "x": 18.0, "y": 8.0}
    driving = state_for(order, "A5", 0, agvPosition=at_a5, driving=True)
    assert not [e for e in lk.on_state(State.model_validate(driving), 2.0)[0] if isinstance(e, VehicleMoved)]
    off_node = {**at_a5, "x": 18.0, "y": 4.0}
    astray = state_for(order, "A5", 0, agvPosition=off_node)
    assert not [e for e in lk.on_state(State.model_validate(astray), 3.0)[0] if isinstance(e, VehicleMoved)]
    standing = state_for(order, "A5", 0, agvPosition=at_a5)
    events, _ = lk.on_state(State.model_validate(standing), 4.0)
    assert [e for e in events if isinstance(e, VehicleMoved)] == [VehicleMoved("AGV-01", "A5")]
    assert not [e for e in lk.on_state(State.model_validate(standing), 5.0)[0] if isinstance(e, VehicleMoved)]
    nxt = lk.drive(("A6",), horizon=[], now=6.0)
    assert nxt.order_update_id == 0 and nxt.nodes[0].node_id == "A5"
