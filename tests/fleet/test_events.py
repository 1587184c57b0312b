"""The event stream: numbered changes, resumed from the last number seen, resync when events were
missed, over Server-Sent Events and WebSocket."""

from __future__ import annotations

import json

import httpx
from starlette.testclient import TestClient

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.eventlog import EventLog
from fleet.service import FleetService
from sim.runner import Simulation


def parse_sse(text: str) -> list[dict[str, object]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


async def test_sse_numbers_changes_and_resumes(
    client: httpx.AsyncClient, plant: tuple[Simulation, FleetService]
) -> None:
    sim, _ = plant
    order = (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).json()
    sim.run_for(30)
    first = parse_sse((await client.get("/api/v1/events", params={"wait": "false"})).text)
    seqs = [e["seq"] for e in first]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    states = [e["data"]["state"] for e in first if e["kind"] == "order" and e["data"]["id"] == order["id"]]  # type: ignore[index]
    assert states[:3] == ["accepted", "assigned", "to_pickup"]
    assert any(e["kind"] == "vehicle" for e in first)
    last, stream = first[-1]["seq"], first[-1]["stream"]
    sim.run_for(200)
    rest = parse_sse(
        (await client.get("/api/v1/events", params={"wait": "false", "after": last, "stream": stream})).text
    )
    assert rest and all(e["seq"] > last for e in rest)  # type: ignore[operator]
    assert [e["seq"] for e in rest] == list(range(last + 1, last + 1 + len(rest)))  # type: ignore[operator]
    assert any(e["kind"] == "order" and e["data"]["state"] == "finished" for e in rest)  # type: ignore[index]
    by_header = await client.get("/api/v1/events", params={"wait": "false"}, headers={"Last-Event-ID": str(last)})
    assert parse_sse(by_header.text)[0]["seq"] == last + 1  # type: ignore[operator]


async def test_a_stale_stream_or_lost_events_mean_resync(client: httpx.AsyncClient) -> None:
    other = parse_sse((await client.get("/api/v1/events", params={"wait": "false", "stream": "elsewhere"})).text)
    assert other[0]["kind"] == "resync"
    log = EventLog(capacity=3)
    for k in range(5):
        log.append("order", {"k": k})
    assert [e.kind for e in log.since(0)] == ["resync"]
    assert [e.data["k"] for e in log.since(3)] == [3, 4]


def test_websocket_delivers_the_same_events(plant: tuple[Simulation, FleetService]) -> None:
    _, service = plant
    with TestClient(create_app(service, keys=ApiKeys())) as client:
        created = client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"}).json()
        with client.websocket_connect("/api/v1/events/ws?after=0") as ws:
            seen = [ws.receive_json() for _ in range(len(service.events.since(0)))]
    orders = [e for e in seen if e["kind"] == "order"]
    assert orders and orders[0]["data"]["id"] == created["id"]
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
