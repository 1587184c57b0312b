"""Clients on the broker that are not the vehicles they claim to be, against a real `fleet serve`
and real simulated vehicles over a real mosquitto: a rogue vehicle gets no work until an operator
admits it (from the control-room page, in Chromium), another manufacturer cannot speak for a
fleet vehicle, and a flood of stale states hides none of the real ones. Every dropped message is
counted by its reason in /metrics."""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.request
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from playwright.sync_api import sync_playwright

from tests.broker import Broker
from tests.browser.test_control_room import CHROMIUM_FLAGS
from tests.e2e.plant import KEY, Plant, finished_count, request
from tests.waiting import wait_until

FATAL = [{"errorType": "forged", "errorLevel": "FATAL", "errorReferences": [], "errorDescription": "forged"}]


def _state(manufacturer: str, serial: str, header: int, node: str, errors: list[object] | None = None) -> bytes:
    """A well-formed VDA 5050 2.0 state standing still at `node` of small_test (A3 is at 12, 0)."""
    return json.dumps(
        {
            "headerId": header,
            "timestamp": datetime.now(UTC).isoformat(),
            "version": "2.0.0",
            "manufacturer": manufacturer,
            "serialNumber": serial,
            "orderId": "",
            "orderUpdateId": 0,
            "lastNodeId": node,
            "lastNodeSequenceId": 0,
            "nodeStates": [],
            "edgeStates": [],
            "driving": False,
            "actionStates": [],
            "batteryState": {"batteryCharge": 90.0, "charging": False},
            "operatingMode": "AUTOMATIC",
            "errors": errors or [],
            "safetyState": {"eStop": "NONE", "fieldViolation": False},
            "agvPosition": {"x": 12.0, "y": 0.0, "theta": 0.0, "mapId": "small_test", "positionInitialized": True},
        }
    ).encode()


def _connection(manufacturer: str, serial: str, state: str) -> bytes:
    return json.dumps(
        {
            "headerId": 1,
            "timestamp": datetime.now(UTC).isoformat(),
            "version": "2.0.0",
            "manufacturer": manufacturer,
            "serialNumber": serial,
            "connectionState": state,
        }
    ).encode()


class Intruder:
    """A plain MQTT client on the plant's broker that records what is sent to ROGUE-1."""

    def __init__(self, broker: Broker) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder")
        self.client.on_message = self._record
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("uagv/v2/+/ROGUE-1/#", qos=1)
        self.client.loop_start()

    def _record(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def to_rogue(self, name: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.received if t.endswith(f"/ROGUE-1/{name}")]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _dropped(plant: Plant) -> dict[str, int]:
    """VDA 5050 messages dropped by reason, and (as `superseded`) state snapshots skipped for a
    newer one on their topic, from /metrics."""
    req = urllib.request.Request(f"{plant.base}/metrics", headers={"x-api-key": KEY})
    with urllib.request.urlopen(req, timeout=10) as answer:
        text = answer.read().decode()
    found = {m[0]: int(float(m[1])) for m in re.findall(r'messages_dropped_total\{reason="(\w+)"\} (\S+)', text)}
    found["superseded"] = sum(int(float(n)) for n in re.findall(r"fleet_mqtt_superseded_total\{[^}]*\} (\S+)", text))
    return found


def _vehicles(plant: Plant) -> dict[str, dict[str, object]]:
    return {v["id"]: v for v in request(plant.base, "GET", "/api/v1/vehicles")}  # type: ignore[union-attr,index]


def test_rogue_and_impersonating_clients_drive_nothing(plant: Plant, mosquitto: Broker) -> None:
    plant.start_controller()
    intruder = Intruder(mosquitto)
    try:
        for pickup, dropoff in (("ST-A", "ST-B"), ("ST-A", "ST-C"), ("ST-C", "ST-B")):
            request(plant.base, "POST", "/api/v1/orders", {"from": pickup, "to": dropoff})
        wait_until(lambda: finished_count(plant.db) >= 1, 120, "an order finished")

        # A vehicle nobody configured comes online and reports three times.
        intruder.publish("uagv/v2/rogue/ROGUE-1/connection", _connection("rogue", "ROGUE-1", "ONLINE"))
        for header in range(3):
            intruder.publish("uagv/v2/rogue/ROGUE-1/state", _state("rogue", "ROGUE-1", header, "M1"))
        # Another manufacturer's client speaks for fleet-sim vehicles: a fatal error, an OFFLINE.
        intruder.publish("uagv/v2/EVIL/AGV-02/state", _state("EVIL", "AGV-02", 10**6, "A3", FATAL))
        intruder.publish("uagv/v2/EVIL/AGV-01/connection", _connection("EVIL", "AGV-01", "OFFLINE"))
        # A flood on a fleet vehicle's own topic, with headerIds older than its own.
        stale = _state("fleetsim", "AGV-03", 7, "A3", FATAL)
        for _ in range(10_000):
            intruder.client.publish("uagv/v2/fleetsim/AGV-03/state", stale, qos=0)
        intruder.publish("uagv/v2/fleetsim/AGV-03/state", stale)
        for pickup, dropoff in (("ST-A", "ST-B"), ("ST-C", "ST-B"), ("ST-A", "ST-C")):
            request(plant.base, "POST", "/api/v1/orders", {"from": pickup, "to": dropoff})
        wait_until(lambda: finished_count(plant.db) >= 6, 240, "6 of 6 orders finished")

        vehicles = _vehicles(plant)
        assert sorted(vehicles) == ["AGV-01", "AGV-02", "AGV-03", "AGV-04"], "the rogue is not in the fleet"
        for vid in ("AGV-01", "AGV-02", "AGV-03"):
            assert vehicles[vid]["available"] and not vehicles[vid]["errors"], vehicles[vid]
        assert not intruder.to_rogue("order") and not intruder.to_rogue("instantActions"), "nothing sent to it"
        pending = request(plant.base, "GET", "/api/v1/pending-vehicles")
        assert [(p["serial_number"], p["manufacturer"]) for p in pending] == [("ROGUE-1", "rogue")]  # type: ignore[union-attr,index]
        dropped = _dropped(plant)
        assert dropped.get("unknown_vehicle", 0) >= 2 and dropped.get("impersonation", 0) >= 2, dropped
        # The flood: skipped by the MQTT client behind the vehicle's newer states, or dropped as stale.
        assert dropped.get("stale_header", 0) + dropped["superseded"] >= 9_000, dropped

        # The operator admits it from the control-room page: it is asked for its state at once,
        # and placed when it reports.
        _admit_from_the_page(plant, "ROGUE-1")
        wait_until(lambda: intruder.to_rogue("instantActions"), 30, "a stateRequest to the admitted vehicle", 0.2)
        assert b"stateRequest" in intruder.to_rogue("instantActions")[0]
        intruder.publish("uagv/v2/rogue/ROGUE-1/state", _state("rogue", "ROGUE-1", 3, "M1"))
        wait_until(lambda: "ROGUE-1" in _vehicles(plant), 30, "the admitted vehicle placed", 0.2)
        assert request(plant.base, "GET", "/api/v1/pending-vehicles") == []
    finally:
        intruder.close()


def _admit_from_the_page(plant: Plant, serial: str) -> None:
    """In real Chromium: the pending vehicle is listed in the page, and its admit button admits it."""
    executable = shutil.which("chromium")
    assert executable is not None, "chromium is not installed: run `make test`"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.on("dialog", lambda d: d.accept())
        page.goto(f"{plant.base}/?key={KEY}")
        row = page.wait_for_selector(f"tr[data-pending='{serial}']", timeout=20_000)
        assert row is not None and "rogue" in row.inner_text()
        page.click(f"button[data-admit='{serial}']")
        page.wait_for_selector("#pending-section", state="hidden", timeout=20_000)
        browser.close()
