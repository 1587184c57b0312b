"""The controller drives vehicles nobody here wrote: Siemens' vda-5050-lib virtual AGVs
(`tests.e2e.third_party`), with the vehicle profile of `examples/`, over a real mosquitto, and no
translator in between. Each test asserts what the vehicles did from their own messages and what
the API shows; every message the controller sent is checked against the official schemas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.vda5050.schemas import schema_errors
from tests.broker import Broker
from tests.e2e.third_party import SERIALS, ThirdPartyPlant


@pytest.fixture
def plant(tmp_path: Path, mosquitto: Broker) -> Iterator[ThirdPartyPlant]:
    running = ThirdPartyPlant(tmp_path, mosquitto)
    try:
        running.start_peer()
        running.start_controller()
        running.until(
            "the three AGVs on the map",
            lambda: all(v["activity"] != "not_reported" for v in running.vehicles().values()),
            60,
        )
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
