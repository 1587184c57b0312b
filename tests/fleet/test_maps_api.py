"""Maps through the API: an invalid map is refused with every problem named; a valid one is kept
and in use at once when the fleet is quiet, else from the next start (between shifts)."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from fleet.server import active_map
from fleet.service import FleetService
from maps import FacilityMap
from maps.schema import map_to_wire
from sim.runner import Simulation


def _wire(fmap: FacilityMap) -> dict[str, Any]:
    return copy.deepcopy(map_to_wire(fmap))


async def test_an_invalid_map_is_refused_with_every_problem(client: httpx.AsyncClient, small_map: FacilityMap) -> None:
    broken = _wire(small_map)
    broken["lanes"].append({"from": "A1", "to": "NOWHERE", "max_speed": 1.0})
    broken["stations"].append({"id": "ST-X", "node": "GHOST", "kind": "pickup", "load_types": ["rack"]})
    for path in ("/api/v1/maps/validate", "/api/v1/maps"):
        answer = await client.post(path, json=broken)
        assert answer.status_code == 422, answer.text
        problems = answer.json()["problems"]
        assert any("NOWHERE" in p for p in problems) and any("GHOST" in p for p in problems), problems
    assert (await client.get("/api/v1/maps")).json() == [], "nothing kept"
    not_a_map = await client.post("/api/v1/maps", json={"nodes": "many"})
    assert not_a_map.status_code == 422 and any("nodes" in p for p in not_a_map.json()["problems"])


async def test_a_valid_map_is_in_use_at_once_when_the_fleet_is_quiet(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService], small_map: FacilityMap
) -> None:
    sim, service = plant
    assert (await client.post("/api/v1/maps/validate", json=_wire(small_map))).json()["problems"] == []
    faster = _wire(small_map)
    faster["name"] = "small_test_v2"
    faster["lanes"][0]["max_speed"] = 0.7
    answer = await client.post("/api/v1/maps", json=faster)
    assert answer.status_code == 201, answer.text
    assert answer.json()["in_use"] and answer.json()["waiting_for"] == []
    assert (await client.get("/api/v1/map")).json()["name"] == "small_test_v2"
    assert service.controller.map.name == "small_test_v2" and sim.fmap.name == "small_test_v2"
    created = await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})
    sim.run_for(600)
    service.record(sim.controller.take_commands())
    assert (await client.get(f"/api/v1/orders/{created.json()['id']}")).json()["state"] == "finished"
    assert sim.oracle.collisions == []


async def test_a_map_uploaded_mid_shift_waits_for_the_next_start(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService], small_map: FacilityMap
) -> None:
    sim, service = plant
    await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})
    sim.run_for(20)
    service.record(sim.controller.take_commands())
    nextshift = _wire(small_map)
    nextshift["name"] = "small_test_next"
    answer = (await client.post("/api/v1/maps", json=nextshift)).json()
    assert not answer["in_use"] and any("busy with order" in r for r in answer["waiting_for"]), answer
    assert service.controller.map.name == "small_test", "the running controller keeps its map"
    assert answer["map"]["active"], "but it is the map the next start loads"
    assert active_map(service.store, small_map).name == "small_test_next"
    listed = (await client.get("/api/v1/maps")).json()
    assert [m["name"] for m in listed] == ["small_test_next"]
    assert (await client.post("/api/v1/maps/99/activate")).status_code == 404
