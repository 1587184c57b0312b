"""API keys: nobody without a key reads, nobody without an operator key moves anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fleet.api import create_app
from fleet.api.security import ApiKeys, Role
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from sim.runner import SimConfig, Simulation

KEYS = ApiKeys.parse("operator:op-secret, viewer:look-only")


@pytest.fixture
def service(small_map: FacilityMap, tmp_path: Path) -> FleetService:
    sim = Simulation(small_map, SimConfig(vehicles=2, seed=3), demand_enabled=False)
    return FleetService(sim.controller, OrderStore(tmp_path / "fleet.db"))


@pytest.fixture
async def client(service: FleetService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(service, keys=KEYS))
    async with httpx.AsyncClient(transport=transport, base_url="http://plant") as c:
        yield c


async def test_roles(client: httpx.AsyncClient, service: FleetService) -> None:
    order = {"from": "ST-A", "to": "ST-B"}
    assert (await client.get("/api/v1/vehicles")).status_code == 401
    assert (await client.get("/api/v1/vehicles", headers={"X-API-Key": "wrong"})).status_code == 401
    assert (await client.get("/api/v1/health")).status_code == 200, "readiness needs no key"
    viewer = {"X-API-Key": "look-only"}
    assert (await client.get("/api/v1/vehicles", headers=viewer)).status_code == 200
    assert (await client.get("/api/v1/whoami", headers=viewer)).json() == {"role": "viewer"}
    for method, path, body in [
        ("POST", "/api/v1/orders", order),
        ("POST", "/api/v1/vehicles/AGV-01/pause", None),
        ("POST", "/api/v1/fleet/pause", None),
        ("POST", "/api/v1/lanes/A2-A3/close", None),
    ]:
        refused = await client.request(method, path, json=body, headers=viewer)
        assert refused.status_code == 403, path
    assert service.store.count() == 0 and not service.controller.fleet_paused
    created = await client.post("/api/v1/orders", json=order, headers={"X-API-Key": "op-secret"})
    assert created.status_code == 201
    assert (await client.get("/metrics", params={"key": "look-only"})).status_code == 200


def test_websocket_needs_a_key(service: FleetService) -> None:
    with TestClient(create_app(service, keys=KEYS)) as c:
        with pytest.raises(WebSocketDisconnect) as refused, c.websocket_connect("/api/v1/events/ws"):
            pass
        assert refused.value.code == 1008
        created = c.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"}, headers={"X-API-Key": "op-secret"})
        assert created.status_code == 201
        with c.websocket_connect("/api/v1/events/ws?key=look-only") as ws:
            assert ws.receive_json()["data"]["id"] == created.json()["id"]


def test_key_configuration_is_checked() -> None:
    assert ApiKeys.parse("").open and ApiKeys.parse("").role_of(None) is Role.OPERATOR
    with pytest.raises(ValueError, match="'admin:x' is not role:key"):
        ApiKeys.parse("admin:x")


async def test_state_changes_are_audited(client: httpx.AsyncClient, service: FleetService) -> None:
    """Who (role and key fingerprint, never the key), what and when, for every state-changing
    request, refused ones too; reads are not logged; only operators read the log."""
    operator, viewer = {"X-API-Key": "op-secret"}, {"X-API-Key": "look-only"}
    await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"}, headers=operator)
    await client.post("/api/v1/fleet/pause", headers=viewer)
    await client.post("/api/v1/lanes/A2-A3/close")
    await client.get("/api/v1/vehicles", headers=operator)
    assert (await client.get("/api/v1/audit", headers=viewer)).status_code == 403
    entries = (await client.get("/api/v1/audit", headers=operator)).json()
    assert [(e["who"], e["method"], e["path"], e["status"]) for e in entries] == [
        ("no key", "POST", "/api/v1/lanes/A2-A3/close", 401),
        ("viewer", "POST", "/api/v1/fleet/pause", 403),
        ("operator", "POST", "/api/v1/orders", 201),
    ]
    assert entries[2]["key_id"] and entries[2]["key_id"] != entries[1]["key_id"]
    assert "op-secret" not in str(entries)
    assert entries[0]["at"] == service.controller.clock.now()


def test_keys_from_the_key_file_are_stored_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fleet keys add` prints a key once and stores only a salted hash; the controller takes the
    file's keys (FLEET_API_KEY_FILE); a removed key no longer opens anything."""
    from typer.testing import CliRunner

    from sim.cli import app as cli

    file = tmp_path / "keys.json"
    added = CliRunner().invoke(cli, ["keys", "add", "--role", "viewer", "--file", str(file)])
    assert added.exit_code == 0, added.output
    key_id, key = added.output.split("\n")[0].split(" (viewer): ")
    assert key not in file.read_text() and key_id in file.read_text()
    refused = CliRunner().invoke(cli, ["keys", "add", "--role", "root", "--file", str(file)])
    assert refused.exit_code == 2
    monkeypatch.setenv("FLEET_API_KEY_FILE", str(file))
    monkeypatch.delenv("FLEET_API_KEYS", raising=False)
    keys = ApiKeys.from_env()
    assert not keys.open
    assert keys.role_of(key) is Role.VIEWER and keys.role_of(key + "x") is None and keys.role_of(None) is None
    assert CliRunner().invoke(cli, ["keys", "remove", key_id, "--file", str(file)]).exit_code == 0
    emptied = ApiKeys.from_env()
    assert not emptied.open and emptied.role_of(key) is None, "an empty key file keeps the API closed"
    assert CliRunner().invoke(cli, ["keys", "remove", key_id, "--file", str(file)]).exit_code == 1
