"""HTTP API: orders in, validation errors name the field, and an accepted order finishes in the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fleet.service import FleetService
from maps import FacilityMap
from sim.runner import SimConfig, Simulation


async def test_accepted_order_finishes_in_the_simulator(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    sim, service = plant
    created = await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B", "priority": 3})
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    assert service.store.get(order_id) is not None, "acknowledged means committed"
    for _ in range(20):
        sim.run_for(30)
        state = (await client.get(f"/api/v1/orders/{order_id}")).json()["state"]
        if state == "finished":
            break
    assert state == "finished"
    await service.committed()  # changes from vehicle events are committed in the background
    stored = service.store.get(order_id)
    assert stored is not None and stored.state.value == "finished"
    vehicles = (await client.get("/api/v1/vehicles")).json()
    assert {v["id"] for v in vehicles} == {"AGV-01", "AGV-02"}
    one = (await client.get("/api/v1/vehicles/AGV-02")).json()
    assert one == next(v for v in vehicles if v["id"] == "AGV-02")
    missing = await client.get("/api/v1/vehicles/AGV-99")
    assert missing.status_code == 404 and "AGV-99" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "ST-B"}, "from"),
        ({"from": "ST-A", "to": "ST-B", "priority": "high"}, "priority"),
        ({"from": "ST-A", "to": "ST-B", "priority": 99}, "priority"),
        ({"from": "ST-A", "to": "ST-B", "colour": "red"}, "colour"),
    ],
)
async def test_malformed_requests_get_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/orders", json=body)
    assert response.status_code == 422
    assert any(err["field"] == field for err in response.json()["errors"])


async def test_unknown_station_gets_422_with_its_name(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    response = await client.post("/api/v1/orders", json={"from": "ST-A", "to": "LAM-9"})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["detail"], problem["field"], problem["status"]) == ("unknown station 'LAM-9'", "dropoff", 422)
    assert plant[1].store.count() == 0


async def test_unknown_order_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/orders/TO-999999")
    assert response.status_code == 404
    assert "TO-999999" in response.json()["detail"]


async def test_health(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/health")).json()
    assert body["status"] == "ok" and body["map"] == "small_test" and body["vehicles"] == 2


async def test_pause_a_vehicle_and_the_fleet(client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]) -> None:
    """A paused vehicle stops moving and gets no work; resuming lets the order finish; the fleet-wide
    pause holds everyone; unknown vehicles are 404."""
    sim, _ = plant
    created = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).json()
    for _ in range(40):
        sim.run_for(1)
        if any(v.moving for v in sim.vehicles):
            break
    mover = next(v for v in sim.vehicles if v.moving)
    paused = await client.post(f"/api/v1/vehicles/{mover.id}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    sim.run_for(2)
    x = (mover.x, mover.y)
    sim.run_for(20)
    assert (mover.x, mover.y) == x, "a paused vehicle holds where it is"
    assert (await client.post(f"/api/v1/vehicles/{mover.id}/resume")).json()["paused"] is False
    assert (await client.post("/api/v1/fleet/pause")).json() == {"paused": True}
    sim.run_for(20)
    assert (mover.x, mover.y) == x
    assert (await client.post("/api/v1/fleet/resume")).json() == {"paused": False}
    sim.run_for(300)
    assert (await client.get(f"/api/v1/orders/{created['id']}")).json()["state"] == "finished"
    assert (await client.post("/api/v1/vehicles/AGV-99/pause")).status_code == 404


async def test_close_and_open_lanes(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/lanes/A2-A3/close")).json() == {"closed": ["A2-A3"]}
    assert (await client.get("/api/v1/lanes/closed")).json() == {"closed": ["A2-A3"]}
    assert (await client.post("/api/v1/lanes/A2-A3/open")).json() == {"closed": []}
    missing = await client.post("/api/v1/lanes/NOPE/close")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


async def test_close_and_open_zones(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/zones/FIRE-DOOR/close")).json() == {"closed": ["FIRE-DOOR"]}
    assert (await client.get("/api/v1/zones/closed")).json() == {"closed": ["FIRE-DOOR"]}
    assert (await client.get("/api/v1/map")).json()["closed_zones"] == ["FIRE-DOOR"]
    assert (await client.post("/api/v1/zones/FIRE-DOOR/open")).json() == {"closed": []}
    missing = await client.post("/api/v1/zones/NOPE/close")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


async def test_plc_call_is_idempotent(client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]) -> None:
    """A call for material at ST-B brings a rack from the nearest station that gives racks; the same
    call retried (same Idempotency-Key) answers 200 with the same order and creates nothing; the key
    reused for another call is 409; a PLC request_id works like the header."""
    _, service = plant
    call = {"station": "ST-B", "need": "material"}
    first = await client.post("/api/v1/calls", json=call, headers={"Idempotency-Key": "plc-7-0001"})
    assert first.status_code == 201, first.text
    order = first.json()
    assert (order["dropoff"], order["load_type"]) == ("ST-B", "rack")
    assert order["pickup"] in ("ST-A", "ST-C")
    assert service.store.get(order["id"]) is not None
    again = await client.post("/api/v1/calls", json=call, headers={"Idempotency-Key": "plc-7-0001"})
    assert again.status_code == 200 and again.json()["id"] == order["id"]
    assert service.store.count() == 1 and len(service.orders()) == 1
    other = await client.post(
        "/api/v1/calls", json={"station": "ST-C", "need": "removal"}, headers={"Idempotency-Key": "plc-7-0001"}
    )
    assert other.status_code == 409 and "plc-7-0001" in other.json()["detail"]
    by_id = {"station": "ST-C", "need": "removal", "request_id": "R-42"}
    created = await client.post("/api/v1/calls", json=by_id)
    retried = await client.post("/api/v1/calls", json=by_id)
    assert (created.status_code, retried.status_code) == (201, 200)
    assert created.json()["id"] == retried.json()["id"] and created.json()["pickup"] == "ST-C"
    assert service.store.count() == 2


async def test_the_same_call_sent_ten_times_at_once_makes_one_order(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """Ten copies of one call in flight together give one order, one 201 and nine 200s with its
    id; a key only storage knows (not in memory, as after a restart) is found there too."""
    _, service = plant
    call = {"station": "ST-B", "need": "material"}
    headers = {"Idempotency-Key": "plc-9-0001"}
    answers = await asyncio.gather(*(client.post("/api/v1/calls", json=call, headers=headers) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert service.store.count() == 1 and len(service.orders()) == 1
    await service.committed()
    service._recent_calls.clear()  # as after a restart: only storage knows the key
    again = await client.post("/api/v1/calls", json=call, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == answers[0].json()["id"]
    assert service.store.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"station": "NOPE", "need": "material"}, "station"),
        ({"station": "ST-A", "need": "material"}, "need"),  # a pick-up station: nothing can be delivered
        ({"station": "ST-B", "need": "material", "load_type": "bin"}, "load_type"),
    ],
)
async def test_calls_the_plant_cannot_serve_name_the_field(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService], body: dict[str, str], field: str
) -> None:
    response = await client.post("/api/v1/calls", json=body, headers={"Idempotency-Key": "k"})
    assert response.status_code == 422 and response.json()["field"] == field
    assert plant[1].store.count() == 0 and plant[1].store.call("k") is None


async def test_cancel_and_reprioritise_orders(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    sim, service = plant
    first = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).json()
    changed = await client.patch(f"/api/v1/orders/{first['id']}", json={"priority": 7})
    assert changed.status_code == 200 and changed.json()["priority"] == 7
    assert service.store.get(first["id"]).priority == 7  # type: ignore[union-attr]
    assert (await client.patch(f"/api/v1/orders/{first['id']}", json={"priority": 11})).status_code == 422
    cancelled = await client.post(f"/api/v1/orders/{first['id']}/cancel", json={"reason": "line stopped"})
    assert cancelled.status_code == 200
    assert (cancelled.json()["state"], cancelled.json()["reason"]) == ("cancelled", "line stopped")
    assert service.store.get(first["id"]).state.value == "cancelled"  # type: ignore[union-attr]
    again = await client.post(f"/api/v1/orders/{first['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert (await client.post("/api/v1/orders/TO-999999/cancel")).status_code == 404
    second = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).json()
    for _ in range(60):
        sim.run_for(5)
        if service.order(second["id"]).state.value == "to_dropoff":  # type: ignore[union-attr]
            break
    loaded = await client.post(f"/api/v1/orders/{second['id']}/cancel")
    assert loaded.status_code == 409 and "on a vehicle" in loaded.json()["detail"]


async def test_metrics(client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]) -> None:
    """Prometheus text: order and vehicle gauges follow the plant; extra sources are appended."""
    from fleet.metrics import Sample

    sim, service = plant
    await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})
    service.metric_sources.append(lambda: [Sample("fleet_test_total", "counter", "A test source.", 3)])
    body = (await client.get("/metrics")).text
    assert "# TYPE fleet_orders gauge" in body
    assert 'fleet_orders{state="accepted"} 1' in body
    assert 'fleet_vehicles{activity="park"} 2' in body
    assert "fleet_test_total 3" in body
    sim.run_for(300)
    body = (await client.get("/metrics")).text
    assert 'fleet_orders{state="finished"} 1' in body and 'fleet_orders{state="accepted"} 0' in body
    assert "fleet_dispatch_runs_total" in body and "fleet_route_planning_seconds_total 0" in body, (
        "the test plant has no stopwatch: compute time reads 0, runs stay reproducible"
    )
    assert f"fleet_routes_planned_total {sim.controller.stats.routes_planned}" in body
    assert f"fleet_routes_unplanned_total {sim.controller.stats.routes_unplanned}" in body
    assert sim.controller.stats.routes_planned > 0


async def test_compute_time_is_measured_with_the_shells_stopwatch(small_map: FacilityMap) -> None:
    """With a stopwatch (the server shells pass time.perf_counter) dispatch and planning time add up."""
    ticks = iter(range(1_000_000))
    sim = Simulation(
        small_map, SimConfig(vehicles=2, seed=3), demand_enabled=False, stopwatch=lambda: float(next(ticks))
    )
    sim.controller.submit_order("ST-A", "ST-B")
    sim.run_for(60)
    stats = sim.controller.stats
    assert stats.dispatch_runs > 0 and stats.dispatch_s >= stats.dispatch_runs
    assert stats.routes_planned > 0 and stats.planning_s >= stats.routes_planned


async def test_readiness(client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]) -> None:
    """Ready when storage answers and the start-up hold is over; 503 naming why otherwise."""
    sim, _ = plant
    assert (await client.get("/api/v1/ready")).json() == {"ready": True, "problems": []}
    sim.controller.hold_releases(sim.now + 10)
    starting = await client.get("/api/v1/ready")
    assert starting.status_code == 503 and "starting" in starting.json()["problems"][0]
    sim.run_for(11)
    assert (await client.get("/api/v1/ready")).status_code == 200


async def test_service_and_send_to_charger_or_parking(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """Out of service: no work, the order goes to the other vehicle; send to the charger: the
    vehicle drives there and charges; a busy vehicle is 409; unknown places name the field."""
    sim, service = plant
    out = await client.post("/api/v1/vehicles/AGV-01/out-of-service")
    assert out.status_code == 200 and out.json()["available"] is False
    order = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).json()
    sim.run_for(10)
    assert service.order(order["id"]).vehicle_id == "AGV-02"  # type: ignore[union-attr]
    assert (await client.post("/api/v1/vehicles/AGV-02/park")).status_code == 409
    bad = await client.post("/api/v1/vehicles/AGV-01/charge", json={"place_id": "CH-9"})
    assert bad.status_code == 422 and bad.json()["field"] == "place_id"
    sent = await client.post("/api/v1/vehicles/AGV-01/charge")
    assert sent.status_code == 200 and sent.json()["activity"] == "charge"
    sim.run_for(120)
    vehicle = next(v for v in (await client.get("/api/v1/vehicles")).json() if v["id"] == "AGV-01")
    assert (vehicle["node"], vehicle["activity"]) == ("CH", "charge")
    assert (await client.post("/api/v1/vehicles/AGV-01/in-service")).json()["available"] is True


async def test_a_load_mismatch_is_shown_and_decided_through_the_api(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """A vehicle whose sensing reports a load it should not have shows the mismatch and is not
    available; a decision without a mismatch is 409, a wrong one 422 naming `trust`; trusting the
    vehicle keeps it waiting until its sensing agrees again."""
    from fleet.events import LoadReported

    sim, _ = plant
    url = "/api/v1/vehicles/AGV-01/load-decision"
    none = await client.post(url, json={"trust": "record"})
    assert none.status_code == 409 and "no load mismatch" in none.json()["detail"]
    sim.controller.handle(LoadReported("AGV-01", True))
    shown = (await client.get("/api/v1/vehicles/AGV-01")).json()
    assert shown["load_mismatch"] == "AGV-01 reports a load but should be empty" and shown["available"] is False
    bad = await client.post(url, json={"trust": "maybe"})
    assert bad.status_code == 422 and bad.json()["field"] == "trust"
    kept = await client.post(url, json={"trust": "vehicle"})
    assert kept.status_code == 200 and "nobody ordered" in kept.json()["load_mismatch"]
    sim.controller.handle(LoadReported("AGV-01", False))
    back = (await client.get("/api/v1/vehicles/AGV-01")).json()
    assert back["load_mismatch"] is None and back["available"] is True


async def test_order_listing_filters_and_pages(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    sim, _ = plant
    for _ in range(3):
        await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})
    await client.post("/api/v1/orders", json={"from": "ST-C", "to": "ST-B"})
    everything = await client.get("/api/v1/orders")
    assert everything.headers["X-Total-Count"] == "4"
    page = await client.get("/api/v1/orders", params={"newest_first": "true", "limit": 2, "offset": 1})
    assert [o["id"] for o in page.json()] == ["TO-000003", "TO-000002"]
    from_c = (await client.get("/api/v1/orders", params={"station": "ST-C"})).json()
    assert [o["pickup"] for o in from_c] == ["ST-C"]
    sim.run_for(400)
    done = await client.get("/api/v1/orders", params=[("state", "finished"), ("state", "cancelled")])
    assert int(done.headers["X-Total-Count"]) >= 1 and all(o["state"] == "finished" for o in done.json())
    assert (await client.get("/api/v1/orders", params={"state": "flying"})).status_code == 422
    assert (await client.get("/api/v1/health")).json()["finished_orders"] == int(done.headers["X-Total-Count"])


async def test_bodies_over_the_limit_are_refused(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """413 with a message, whether the size is declared or the body is streamed; nothing made."""
    huge = b'{"from": "ST-A", "to": "ST-B", "note": "' + b"x" * (2 << 20) + b'"}'
    declared = await client.post("/api/v1/orders", content=huge, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "request body over" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    streamed = await client.post("/api/v1/orders", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert plant[1].controller.orders == {}
    assert (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).status_code == 201


async def test_alarms_are_listed_and_acknowledged(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """An alarm the core raises is listed open, newest first, with its time and severity; an
    operator acknowledges it (once: a second acknowledgement keeps the first) and, latched, it
    leaves the open list; an unknown alarm is 404."""
    sim, service = plant
    sim.controller._alarm("transfer-failed", "AGV-01: the cell dropped the load", "AGV-01")
    sim.controller._alarm("vehicle-offline", "AGV-02 is offline", "AGV-02")
    service.record(sim.controller.take_commands())
    listed = (await client.get("/api/v1/alarms", params={"open_only": True})).json()
    assert [a["code"] for a in listed] == ["vehicle-offline", "transfer-failed"]
    first = listed[1]
    assert first["vehicle_id"] == "AGV-01" and first["acknowledged_at"] is None and first["severity"] == "high"
    assert first["state"] == "active-unacknowledged"
    acked = await client.post(f"/api/v1/alarms/{first['id']}/acknowledge")
    assert (
        acked.status_code == 200 and acked.json()["acknowledged_by"] == "admin"
    )  # an open API (no keys) takes every caller for an admin
    sim.run_for(5)
    again = (await client.post(f"/api/v1/alarms/{first['id']}/acknowledge")).json()
    assert again["acknowledged_at"] == acked.json()["acknowledged_at"]
    assert [a["code"] for a in (await client.get("/api/v1/alarms?open_only=true")).json()] == ["vehicle-offline"]
    assert len((await client.get("/api/v1/alarms")).json()) == 2
    missing = await client.post("/api/v1/alarms/999/acknowledge")
    assert missing.status_code == 404 and missing.json()["detail"] == "no alarm 999"
    kinds = [e.kind for e in service.events.since(0)]
    assert kinds.count("alarm") == 4, "raised twice, acknowledged twice, all in the event stream"


async def test_one_alarm_per_condition_until_it_clears(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """ISA-18.2's rules: a condition raised again while its alarm is open counts up on that alarm;
    acknowledged, it stays listed while active; the event that ends it clears it (and goes to the
    journal, as every event that is no alarm does); a cleared alarm still unacknowledged stays
    listed until acknowledged; a condition that comes back after it closed is a new alarm."""
    sim, service = plant

    async def open_alarms() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await client.get("/api/v1/alarms?open_only=true")).json()
        return found

    for _ in range(3):
        sim.controller._alarm("blocked-by-closure", "AGV-01 cannot reach ST-B while lanes are closed", "AGV-01")
    sim.controller._alarm("vehicle-error", "AGV-02: FATAL drive fault", "AGV-02")
    sim.controller._alarm("vehicle-error", "AGV-02: WARNING low air", "AGV-02")
    sim.controller._alarm("lane-opened", "lane L1 opened")
    service.record(sim.controller.take_commands())
    alarms = await open_alarms()
    assert [(a["code"], a["count"]) for a in alarms] == [
        ("vehicle-error", 1),
        ("vehicle-error", 1),
        ("blocked-by-closure", 3),
    ]
    blocked = alarms[2]
    assert (await client.post(f"/api/v1/alarms/{blocked['id']}/acknowledge")).json()["state"] == "active-acknowledged"
    assert blocked["id"] in [a["id"] for a in await open_alarms()], "a condition stays listed while it holds"
    sim.controller._alarm("blocked-by-closure-cleared", "AGV-01 has a way to ST-B again", "AGV-01")
    sim.controller._alarm("vehicle-error-cleared", "AGV-02: WARNING low air", "AGV-02")
    service.record(sim.controller.take_commands())
    alarms = await open_alarms()
    assert [(a["message"], a["state"]) for a in alarms] == [
        ("AGV-02: WARNING low air", "cleared-unacknowledged"),
        ("AGV-02: FATAL drive fault", "active-unacknowledged"),
    ], "one error cleared, the other still active; the acknowledged cleared condition is closed"
    journal = (await client.get("/api/v1/journal")).json()
    assert [e["code"] for e in journal] == ["vehicle-error-cleared", "blocked-by-closure-cleared", "lane-opened"]
    assert all(a["code"] != "lane-opened" for a in (await client.get("/api/v1/alarms")).json())
    sim.controller._alarm("blocked-by-closure", "AGV-01 cannot reach ST-C while lanes are closed", "AGV-01")
    service.record(sim.controller.take_commands())
    newest = (await open_alarms())[0]
    assert newest["code"] == "blocked-by-closure" and newest["id"] != blocked["id"] and newest["count"] == 1
    summary = (await client.get("/api/v1/alarms/summary")).json()
    assert summary == {"critical": 0, "high": 2, "medium": 1, "low": 0, "unacknowledged": 3, "shelved": 0}


async def test_alarms_are_shelved_for_a_while(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """A shelved alarm leaves the open list (counted as shelved) and comes back when its time is
    up, or when an operator unshelves it; a shelf longer than 12 hours is refused by field."""
    sim, service = plant
    sim.controller._alarm("vehicle-offline", "AGV-02 is offline", "AGV-02")
    service.record(sim.controller.take_commands())
    alarm = (await client.get("/api/v1/alarms?open_only=true")).json()[0]
    shelved = await client.post(f"/api/v1/alarms/{alarm['id']}/shelve", json={"minutes": 1})
    assert shelved.status_code == 200 and shelved.json()["shelved_by"] == "admin"
    assert (await client.get("/api/v1/alarms?open_only=true")).json() == []
    assert (await client.get("/api/v1/alarms/summary")).json()["shelved"] == 1
    sim.run_for(61)
    assert [a["id"] for a in (await client.get("/api/v1/alarms?open_only=true")).json()] == [alarm["id"]]
    await client.post(f"/api/v1/alarms/{alarm['id']}/shelve", json={"minutes": 30})
    unshelved = await client.post(f"/api/v1/alarms/{alarm['id']}/unshelve")
    assert unshelved.json()["shelved_until"] is None
    assert len((await client.get("/api/v1/alarms?open_only=true")).json()) == 1
    too_long = await client.post(f"/api/v1/alarms/{alarm['id']}/shelve", json={"minutes": 721})
    assert too_long.status_code == 422 and too_long.json()["field"] == "minutes"
    assert (await client.post("/api/v1/alarms/999/shelve", json={"minutes": 5})).status_code == 404


async def test_due_times_are_taken_checked_and_reported(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """An order with a due time keeps it (stored too); one already past is refused naming the
    field; once finished the order says how late or early it was."""
    sim, service = plant
    sim.run_for(90)  # times before the epoch are refused as out of range, not as past
    now = sim.controller.clock.now()
    past = await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B", "due_at": now - 60})
    assert past.status_code == 422 and past.json()["field"] == "due_at"
    assert "already past" in past.json()["detail"]
    created = await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B", "due_at": now + 900})
    assert created.status_code == 201 and created.json()["due_at"] == now + 900
    order_id = created.json()["id"]
    stored = service.store.get(order_id)
    assert stored is not None and stored.due_at == now + 900
    assert created.json()["lateness_s"] is None
    for _ in range(20):
        sim.run_for(30)
        body = (await client.get(f"/api/v1/orders/{order_id}")).json()
        if body["state"] == "finished":
            break
    assert body["state"] == "finished"
    assert body["lateness_s"] == round(body["history"][-1]["at"] - (now + 900), 1) and body["lateness_s"] < 0


async def test_a_load_ready_later_is_picked_up_when_ready(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """An order whose load is ready in 4 minutes is dispatched at once (within the 5-minute
    look-ahead): its vehicle reaches the pick-up first, waits there saying so, and loads at the
    ready time, not before; the shift KPIs count that wait under its cause, and lead times from
    the ready time. One ready in 20
    minutes waits out of the dispatcher's solves until 5 minutes before. A ready time after the
    due time, or not a number, is refused by name."""
    sim, service = plant
    now = sim.controller.clock.now()
    late_due = await client.post(
        "/api/v1/orders", json={"from": "ST-A", "to": "ST-B", "ready_at": now + 600, "due_at": now + 300}
    )
    assert late_due.status_code == 422 and late_due.json()["field"] == "due_at"
    assert "before the load is ready" in late_due.json()["detail"]
    bad = await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B", "ready_at": "soon"})
    assert bad.status_code == 422 and any(e["field"] == "ready_at" for e in bad.json()["errors"])
    assert service.store.count() == 0
    soon = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B", "ready_at": now + 240})).json()
    later = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-C", "ready_at": now + 1200})).json()
    assert soon["ready_at"] == now + 240
    stored = service.store.get(later["id"])
    assert stored is not None and stored.ready_at == now + 1200
    sim.run_for(180)
    order = sim.controller.orders[soon["id"]]
    assert order.state.value == "to_pickup" and order.vehicle_id is not None
    vehicle = (await client.get(f"/api/v1/vehicles/{order.vehicle_id}")).json()
    assert vehicle["wait_reason"].startswith(f"waits at ST-A for the load of {soon['id']}, ready in ")
    assert sim.controller.orders[later["id"]].state.value == "accepted", "20 minutes ahead: not dispatched yet"
    sim.run_for(1500)
    kpis = (await client.get("/api/v1/kpis", params={"window_s": 3600})).json()
    assert kpis["waiting_s_by_cause"].get("load", 0) > 30, "the waits for the loads count, by their cause"
    # Lead times count from the ready time: both took under 3 minutes from it (from their
    # creation, the later one took over 20).
    assert 0 < kpis["lead_time_mean_s"] < 180 and kpis["orders_finished"] == 2
    for oid, ready in ((soon["id"], now + 240), (later["id"], now + 1200)):
        body = (await client.get(f"/api/v1/orders/{oid}")).json()
        assert body["state"] == "finished"
        loading = next(t["at"] for t in body["history"] if t["state"] == "loading")
        assert ready <= loading < ready + 60
        assigned = next(t["at"] for t in body["history"] if t["state"] == "assigned")
        assert assigned >= ready - 300 - 35, "assigned no sooner than the look-ahead (and a re-dispatch) allow"


async def test_shift_kpis(client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]) -> None:
    """Finished orders, lead times, utilisation and waits of the recent past, as the simulation
    sees them; rates are over the time actually run, not over a window longer than the run; an
    order finished before the window does not count."""
    sim, _ = plant
    for _ in range(3):
        await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})
    sim.run_for(1200)
    kpis = (await client.get("/api/v1/kpis", params={"window_s": 1800})).json()
    finished = [o for o in sim.controller.orders.values() if o.state.value == "finished"]
    assert kpis["orders_finished"] == len(finished) == 3
    assert sum(n for _, n in kpis["finished_by_bin"]) == 3 and len(kpis["finished_by_bin"]) == 16
    assert 0 < kpis["utilisation"] < 1 and kpis["lead_time_mean_s"] > 0
    assert 1200 <= kpis["covered_s"] < 1300, "the run so far, not the 30-minute window"
    assert kpis["finished_per_hour"] == round(3 * 3600 / kpis["covered_s"], 2) > 8
    assert kpis["bin_s"] == kpis["covered_s"] / 16
    sim.run_for(1800)
    later = (await client.get("/api/v1/kpis", params={"window_s": 600})).json()
    assert later["orders_finished"] == 0 and later["utilisation"] == 0.0 and later["covered_s"] == 600
    assert (await client.get("/api/v1/kpis", params={"window_s": 0})).status_code == 422


async def test_admission_limit_set_at_run_time(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    """An operator holds the fleet to one working vehicle: of two orders one is served at a
    time, never both, and both finish; null lifts the limit; a limit below 1 or none given is a
    422 naming the field."""
    sim, service = plant
    assert (await client.get("/api/v1/fleet/admission")).json() == {"max_working_vehicles": None, "working": 0}
    held = await client.put("/api/v1/fleet/admission", json={"max_working_vehicles": 1})
    assert held.status_code == 200 and held.json() == {"max_working_vehicles": 1, "working": 0}
    ids = [(await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).json()["id"] for _ in range(2)]
    most = 0
    for _ in range(900):
        sim.run_for(1)
        most = max(most, (await client.get("/api/v1/fleet/admission")).json()["working"])
        states = {(await client.get(f"/api/v1/orders/{oid}")).json()["state"] for oid in ids}
        if states == {"finished"}:
            break
    assert states == {"finished"}
    assert most == 1, "one vehicle at a time worked on the two orders"
    assert any(a.code == "admission-changed" for a in service.controller.alarms)
    lifted = await client.put("/api/v1/fleet/admission", json={"max_working_vehicles": None})
    assert lifted.json()["max_working_vehicles"] is None
    for body in ({"max_working_vehicles": 0}, {}, {"max_working_vehicles": 2, "extra": 1}):
        refused = await client.put("/api/v1/fleet/admission", json=body)
        assert refused.status_code == 422, body
        assert {err["field"] for err in refused.json()["errors"]} & {"max_working_vehicles", "extra"}, body
    assert (await client.get("/api/v1/fleet/admission")).json()["max_working_vehicles"] is None, "refused: unchanged"
