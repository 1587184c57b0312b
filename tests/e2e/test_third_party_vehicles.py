"""The controller drives vehicles nobody here wrote: Siemens' vda-5050-lib virtual AGVs
(`tests.e2e.third_party`), with the vehicle profile of `examples/`, over a real mosquitto, and no
translator in between. Each test asserts what the vehicles did from their own messages and what
the API shows; every message the controller sent is checked against the official schemas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.vda5050.schemas import schema_errors
from maps import load_map
from tests.broker import Broker
from tests.e2e.third_party import SERIALS, ThirdPartyPlant, profiles_without

NODE_XY = [(n.x, n.y) for n in load_map("small_test").nodes]


def _plant(tmp_path: Path, broker: Broker, **kw: Any) -> ThirdPartyPlant:
    """The peer AGVs and the controller, started, with the three AGVs on the map (stopped again
    if that fails)."""
    running = ThirdPartyPlant(tmp_path, broker, **kw)
    try:
        running.start_peer()
        running.start_controller()
        running.until(
            "the three AGVs on the map",
            lambda: all(v["activity"] != "not_reported" for v in running.vehicles().values()),
            60,
        )
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture
def plant(tmp_path: Path, mosquitto: Broker) -> Iterator[ThirdPartyPlant]:
    running = _plant(tmp_path, mosquitto)
    try:
        yield running
    finally:
        running.stop()


def _errors(states: list[dict[str, Any]]) -> list[str]:
    return sorted({f"{e['errorType']}: {e.get('errorDescription', '')}" for s in states for e in s.get("errors", [])})


def _action_statuses(states: list[dict[str, Any]], action_type: str) -> list[str]:
    seen: list[str] = []
    for s in states:
        for a in s.get("actionStates", []):
            if a["actionType"] == action_type and (not seen or seen[-1] != a["actionStatus"]):
                seen.append(a["actionStatus"])
    return seen


def _schema_problems(plant: ThirdPartyPlant, vda5050_schemas: Path) -> list[str]:
    problems = []
    for topic, body in plant.recorder.sent_by_controller():
        for version in ("2.0.0", "2.1.0"):
            problems += [f"{topic} {version}: {p}" for p in schema_errors(version, topic, body, vda5050_schemas)]
    return problems


def test_vehicles_come_online_with_position_battery_and_no_refusal(
    plant: ThirdPartyPlant, vda5050_schemas: Path
) -> None:
    """The three AGVs stand where they report, with their battery; the controller's state and
    factsheet requests are taken (no refusal in any state), no vehicle-error alarm is raised."""
    vehicles = plant.vehicles()
    assert sorted(vehicles) == list(SERIALS)
    assert {v["node"] for v in vehicles.values()} == {"PA1", "PA2", "PA3"}
    assert all(v["battery"] == 1.0 and v["available"] for v in vehicles.values()), vehicles
    plant.until("a factsheet from each", lambda: all(plant.recorder.of(s, "factsheet") for s in SERIALS), 30)
    for serial in SERIALS:
        assert _errors(plant.recorder.of(serial, "state")) == [], serial
    alarms = plant.api("GET", "/api/v1/alarms")
    assert not [a for a in alarms if a["code"].startswith("vehicle-error")], alarms
    assert _schema_problems(plant, vda5050_schemas) == []


def test_transports_on_several_vehicles_pick_and_drop(plant: ThirdPartyPlant, vda5050_schemas: Path) -> None:
    """Three transports A -> B at once: each vehicle that took one reports its pick and its drop
    FINISHED, with a load on board between them, and every order finishes."""
    orders = [plant.api("POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})["id"] for _ in range(3)]
    plant.until(
        "three transports finished",
        lambda: all(plant.api("GET", f"/api/v1/orders/{oid}")["state"] == "finished" for oid in orders),
        240,
    )
    carriers = {plant.api("GET", f"/api/v1/orders/{oid}")["vehicle_id"] for oid in orders}
    assert len(carriers) >= 2, "the work was shared"
    for serial in carriers:
        states = plant.recorder.of(serial, "state")
        assert _action_statuses(states, "pick")[-1] == "FINISHED", _action_statuses(states, "pick")
        assert _action_statuses(states, "drop")[-1] == "FINISHED", _action_statuses(states, "drop")
        assert any(s.get("loads") for s in states), "it carried the load"
        assert not [e for e in _errors(states) if "Error" in e], _errors(states)
    assert _schema_problems(plant, vda5050_schemas) == []


def test_pause_and_resume_are_what_the_vehicle_reports(plant: ThirdPartyPlant) -> None:
    """A vehicle paused and resumed, then the whole fleet: each AGV's own state says paused, then
    not, and the API says what the vehicle says."""
    serial = SERIALS[0]
    plant.api("POST", f"/api/v1/vehicles/{serial}/pause")
    plant.until("agv001 reports paused", lambda: any(s.get("paused") for s in plant.recorder.of(serial, "state")), 30)
    assert plant.vehicles()[serial]["paused"] is True
    plant.api("POST", f"/api/v1/vehicles/{serial}/resume")
    plant.until("agv001 reports running", lambda: plant.recorder.of(serial, "state")[-1].get("paused") is False, 30)
    assert plant.vehicles()[serial]["paused"] is False
    plant.api("POST", "/api/v1/fleet/pause")
    plant.until(
        "every AGV reports paused", lambda: all(plant.recorder.of(s, "state")[-1].get("paused") for s in SERIALS), 30
    )
    plant.api("POST", "/api/v1/fleet/resume")
    plant.until(
        "every AGV reports running",
        lambda: all(plant.recorder.of(s, "state")[-1].get("paused") is False for s in SERIALS),
        30,
    )
    order = plant.api("POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})["id"]
    plant.until(
        "an order after the pause", lambda: plant.api("GET", f"/api/v1/orders/{order}")["state"] == "finished", 180
    )


def test_a_refused_pick_goes_back_with_the_vehicles_reason_and_can_be_cancelled(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """A profile without the pick parameters the AGV needs: the vehicle refuses the pick order
    (orderError); the order goes back to the dispatcher with the vehicle's reason instead of
    staying `loading`, the vehicle is out of service with an alarm, and the operator cancels it."""
    plant = _plant(tmp_path, mosquitto, profiles=profiles_without(tmp_path, parameters=False))
    try:
        order = plant.api("POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})["id"]

        def refusals() -> list[str]:
            history = plant.api("GET", f"/api/v1/orders/{order}")["history"]
            return [t["reason"] for t in history if "refused the pick" in (t["reason"] or "")]

        plant.until("the pick refused", refusals, 120)
        assert "invalid actionParameter" in refusals()[0], refusals()
        refused_by = next(s for s in SERIALS if any(s2.get("errors") for s2 in plant.recorder.of(s, "state")))
        errors = _errors(plant.recorder.of(refused_by, "state"))
        assert any(e.startswith("orderError") for e in errors), errors
        assert plant.vehicles()[refused_by]["in_service"] is False
        alarms = plant.api("GET", "/api/v1/alarms")
        assert any(a["code"] == "drive-rejected" and a["vehicle_id"] == refused_by for a in alarms), alarms
        plant.until(
            "the order cancellable",
            lambda: plant.api("GET", f"/api/v1/orders/{order}")["state"] in ("accepted", "assigned", "to_pickup"),
            120,
        )
        cancelled = plant.api("POST", f"/api/v1/orders/{order}/cancel", {"reason": "profile being fixed"})
        assert cancelled["state"] == "cancelled"
    finally:
        plant.stop()


def test_a_refused_pause_is_not_believed(tmp_path: Path, mosquitto: Broker) -> None:
    """Without the instant-actions quirk the AGV refuses every instant action (validationError
    naming the message's headerId): the API does not claim a pause that never happened, and a
    command-refused alarm carries the vehicle's reason."""
    plant = _plant(tmp_path, mosquitto, profiles=profiles_without(tmp_path, quirk=False))
    try:
        serial = SERIALS[1]
        plant.api("POST", f"/api/v1/vehicles/{serial}/pause")
        plant.until(
            "the refusal",
            lambda: any(
                a["code"] == "command-refused" and a["vehicle_id"] == serial for a in plant.api("GET", "/api/v1/alarms")
            ),
            40,
        )
        assert not any(s.get("paused") for s in plant.recorder.of(serial, "state")), "the AGV never paused"
        assert plant.vehicles()[serial]["paused"] is False, "nor does the API say it did"
        alarm = next(a for a in plant.api("GET", "/api/v1/alarms") if a["code"] == "command-refused")
        assert "startPause" in alarm["message"] and "validationError" in alarm["message"], alarm
    finally:
        plant.stop()


def test_a_charge_runs_until_the_vehicle_reports_it(tmp_path: Path, mosquitto: Broker) -> None:
    """An AGV at 25 % is sent to charge: it reports charging, and the controller sends no
    stopCharging while the battery is below the charge it asked for."""
    plant = _plant(tmp_path, mosquitto, batteries="100,100,25")
    try:
        serial = SERIALS[2]
        plant.until(
            "agv003 charging",
            lambda: any(s["batteryState"]["charging"] for s in plant.recorder.of(serial, "state")),
            120,
        )
        assert plant.vehicles()[serial]["activity"] == "charge"
        sent = [b for b in plant.recorder.of(serial, "instantActions")]
        assert [a["actionType"] for b in sent for a in b["actions"]].count("startCharging") == 1
        time.sleep(2)
        later = [a["actionType"] for b in plant.recorder.of(serial, "instantActions") for a in b["actions"]]
        assert "stopCharging" not in later, "not stopped below the charge asked for"
        assert plant.recorder.of(serial, "state")[-1]["batteryState"]["charging"] is True
    finally:
        plant.stop()


def test_a_vehicle_restarted_mid_order_is_replanned_from_where_it_stands(tmp_path: Path, mosquitto: Broker) -> None:
    """The AGV process is SIGKILLed while orders are driven: the API shows the connection broken
    and when; restarted, the AGVs report empty orderIds: each lost order is planned again from
    where the vehicle stands (new orderIds, none of the old ones sent again), nothing is refused,
    no vehicle is taken out of service, and the transports finish."""
    plant = _plant(tmp_path, mosquitto)
    try:
        orders = [plant.api("POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})["id"] for _ in range(2)]
        plant.until(
            "an order under way",
            lambda: any(
                plant.api("GET", f"/api/v1/orders/{o}")["state"] in ("to_pickup", "to_dropoff") for o in orders
            ),
            60,
        )
        plant.kill_peer()
        plant.until(
            "connection broken in the API",
            lambda: all(v["connection"] == "connectionbroken" for v in plant.vehicles().values()),
            30,
        )
        assert all(v["connection_since"] is not None for v in plant.vehicles().values())
        sent_before = {b["orderId"] for s in SERIALS for b in plant.recorder.of(s, "order")}
        count_before = {s: len(plant.recorder.of(s, "order")) for s in SERIALS}
        plant.start_peer()
        plant.until(
            "the transports finished after the restart",
            lambda: all(plant.api("GET", f"/api/v1/orders/{o}")["state"] == "finished" for o in orders),
            240,
        )
        vehicles = plant.vehicles()
        assert all(v["connection"] == "online" and v["in_service"] for v in vehicles.values()), vehicles
        alarms = [a["code"] for a in plant.api("GET", "/api/v1/alarms")]
        assert "vehicle-offline" in alarms
        after = [b["orderId"] for s in SERIALS for b in plant.recorder.of(s, "order")[count_before[s] :]]
        assert after and not set(after) & sent_before, "lost orders are planned anew, never resent"
        refused = [e for s in SERIALS for e in _errors(plant.recorder.of(s, "state")) if "Error" in e]
        assert not refused, refused
    finally:
        plant.stop()


def test_a_cancel_that_stops_the_vehicle_between_nodes(tmp_path: Path, mosquitto: Broker) -> None:
    """Cancelled mid-lane, the AGV stops at once, off any node (VDA 5050 allows it): the
    controller keeps the lane it stands on and the node ahead as its own and sends it on at once
    with a new order that starts at its lastNodeId, with a deviation that takes in where it
    stands, and drives that lane: the vehicle accepts it (no noRouteError), leaves the lane, and
    the next transport finishes."""
    plant = _plant(tmp_path, mosquitto, time_lapse=2)  # about 3 s a lane: time to cancel mid-lane
    try:
        order = plant.api("POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})["id"]
        plant.until("assigned", lambda: plant.api("GET", f"/api/v1/orders/{order}")["vehicle_id"], 30)
        serial = plant.api("GET", f"/api/v1/orders/{order}")["vehicle_id"]

        def mid_lane() -> bool:
            seen = plant.recorder.of(serial, "visualization")
            if not seen or "agvPosition" not in seen[-1]:
                return False
            p = seen[-1]["agvPosition"]
            return bool(min(abs(p["x"] - x) + abs(p["y"] - y) for x, y in NODE_XY) > 1.5)

        plant.until("the vehicle mid-lane", mid_lane, 60)
        sent = len(plant.recorder.of(serial, "order"))
        plant.api("POST", f"/api/v1/orders/{order}/cancel", {"reason": "line stopped"})

        def cancel_done() -> dict[str, Any] | None:
            return next(
                (
                    state
                    for state in plant.recorder.of(serial, "state")
                    if not state["driving"]
                    and any(
                        a["actionType"] == "cancelOrder" and a["actionStatus"] == "FINISHED"
                        for a in state["actionStates"]
                    )
                ),
                None,
            )

        plant.until("the cancel done", cancel_done, 30)
        stopped = cancel_done()
        assert stopped is not None
        p = stopped["agvPosition"]
        assert min(abs(p["x"] - x) + abs(p["y"] - y) for x, y in NODE_XY) > 0.5, "it stopped between nodes"
        cancelled = plant.recorder.of(serial, "order")[:sent]
        ahead = next(
            n["nodeId"]
            for o in reversed(cancelled)
            for n in o["nodes"]
            if n["sequenceId"] == stopped["lastNodeSequenceId"] + 2
        )
        plant.until("the vehicle sent on", lambda: len(plant.recorder.of(serial, "order")) > sent, 30)
        first = plant.recorder.of(serial, "order")[sent]
        assert first["orderId"] != cancelled[-1]["orderId"], "a new order, not the cancelled one"
        assert first["nodes"][0]["nodeId"] == stopped["lastNodeId"]
        assert first["nodes"][0]["nodePosition"]["allowedDeviationXY"] > 0.5
        assert first["nodes"][1]["nodeId"] == ahead, "it drives the lane it stands on first"
        plant.until("off the lane", lambda: plant.vehicles()[serial]["node"] != stopped["lastNodeId"], 60)
        nxt = plant.api("POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})["id"]
        plant.until("the next transport", lambda: plant.api("GET", f"/api/v1/orders/{nxt}")["state"] == "finished", 180)
        refused = [e for e in _errors(plant.recorder.of(serial, "state")) if "noRoute" in e or "order" in e.lower()]
        assert not refused, refused
    finally:
        plant.stop()
