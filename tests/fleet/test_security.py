"""API keys: nobody without a key reads, nobody without an operator key moves anything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fleet.api import create_app
from fleet.api.security import ApiKeys, Principal, Role
from fleet.api.security import key_id as key_id_of
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from sim.runner import SimConfig, Simulation

KEYS = ApiKeys.parse("operator:op-secret, viewer:look-only, admin:boss, plc@ST-A:line-a, plc@ST-B:line-b")


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
    assert (await client.get("/api/v1/whoami", headers=viewer)).json() == {"role": "viewer", "station": None}
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
    assert ApiKeys.parse("").open and ApiKeys.parse("").role_of(None) is Role.ADMIN
    for wrong in ("boss:x", "plc:x", "viewer@ST-A:x", "operator:"):
        with pytest.raises(ValueError, match=f"'{wrong}' is not role:key"):
            ApiKeys.parse(wrong)
    plc = ApiKeys.parse("plc@ST-A:line-a").principal_of("line-a")
    assert plc is not None and plc.role is Role.PLC and plc.station == "ST-A" and plc.who == "plc ST-A"


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

    from fleet.cli import app as cli

    file = tmp_path / "keys.json"
    added = CliRunner().invoke(cli, ["keys", "add", "--role", "viewer", "--file", str(file)])
    assert added.exit_code == 0, added.output
    key_id, key = added.output.split("\n")[0].split(" (viewer): ")
    assert key not in file.read_text() and key_id in file.read_text()
    for wrong in (["--role", "root"], ["--role", "plc"], ["--role", "viewer", "--station", "ST-A"]):
        refused = CliRunner().invoke(cli, ["keys", "add", *wrong, "--file", str(file)])
        assert refused.exit_code == 2, wrong
    plc = CliRunner().invoke(cli, ["keys", "add", "--role", "plc", "--station", "LAM-01", "--file", str(file)])
    assert plc.exit_code == 0 and " (plc LAM-01): " in plc.output
    monkeypatch.setenv("FLEET_API_KEY_FILE", str(file))
    monkeypatch.delenv("FLEET_API_KEYS", raising=False)
    keys = ApiKeys.from_env()
    assert not keys.open
    assert keys.role_of(key) is Role.VIEWER and keys.role_of(key + "x") is None and keys.role_of(None) is None
    plc_key = plc.output.split("\n")[0].split(": ")[1]
    assert keys.principal_of(plc_key) == Principal(Role.PLC, "LAM-01", key_id_of(plc_key))
    assert CliRunner().invoke(cli, ["keys", "remove", key_id, "--file", str(file)]).exit_code == 0
    emptied = ApiKeys.from_env()
    assert not emptied.open and emptied.role_of(key) is None, "an empty key file keeps the API closed"
    assert CliRunner().invoke(cli, ["keys", "remove", key_id, "--file", str(file)]).exit_code == 1


# Who may call each operation of the API: the lowest role, or "plc" where a PLC key may call it
# too (for its own station). Every operation in the OpenAPI spec must be listed here.
ACCESS = {
    "GET /api/v1/health": "open",
    "GET /api/v1/ready": "open",
    "POST /api/v1/calls": "operator+plc",
    "GET /api/v1/orders": "viewer+plc",
    "GET /api/v1/orders/{order_id}": "viewer+plc",
    "GET /api/v1/stations": "viewer+plc",
    "GET /api/v1/stations/{station_id}": "viewer+plc",
    "POST /api/v1/stations/{station_id}/transfer/{decision}": "operator",
    "GET /api/v1/whoami": "viewer+plc",
    "POST /api/v1/orders": "operator",
    "PATCH /api/v1/orders/{order_id}": "operator",
    "POST /api/v1/orders/{order_id}/cancel": "operator",
    "GET /api/v1/map": "viewer",
    "GET /api/v1/vehicles": "viewer",
    "GET /api/v1/vehicles/{vehicle_id}": "viewer",
    "GET /api/v1/pending-vehicles": "viewer",
    "GET /api/v1/vehicle-profiles": "viewer",
    "POST /api/v1/pending-vehicles/{serial_number}/admit": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/pause": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/resume": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/out-of-service": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/in-service": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/park": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/charge": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/init-position": "operator",
    "POST /api/v1/vehicles/{vehicle_id}/load-decision": "operator",
    "POST /api/v1/lanes/{lane_id}/close": "operator",
    "POST /api/v1/lanes/{lane_id}/open": "operator",
    "GET /api/v1/lanes/closed": "viewer",
    "POST /api/v1/zones/{zone_id}/close": "operator",
    "POST /api/v1/zones/{zone_id}/open": "operator",
    "GET /api/v1/zones/closed": "viewer",
    "GET /api/v1/alarms": "viewer",
    "GET /api/v1/kpis": "viewer",
    "POST /api/v1/alarms/{alarm_id}/acknowledge": "operator",
    "POST /api/v1/alarms/{alarm_id}/shelve": "operator",
    "POST /api/v1/alarms/{alarm_id}/unshelve": "operator",
    "GET /api/v1/alarms/summary": "viewer",
    "GET /api/v1/journal": "viewer",
    "GET /api/v1/overview": "viewer",
    "GET /api/v1/report": "viewer",
    "GET /api/v1/audit": "operator",
    "POST /api/v1/fleet/pause": "operator",
    "POST /api/v1/fleet/resume": "operator",
    "GET /api/v1/fleet/admission": "viewer",
    "PUT /api/v1/fleet/admission": "operator",
    "GET /api/v1/events": "viewer",
    "GET /api/v1/keys": "admin",
    "POST /api/v1/keys": "admin",
    "DELETE /api/v1/keys/{key_id}": "admin",
    "GET /metrics": "viewer",
    "POST /api/v1/maps/validate": "operator",
    "POST /api/v1/maps": "admin",
    "GET /api/v1/maps": "admin",
    "POST /api/v1/maps/{map_id}/activate": "admin",
}
ROLE_KEYS = {"plc": "line-b", "viewer": "look-only", "operator": "op-secret", "admin": "boss"}
RANK = ["viewer", "operator", "admin"]
PATH_VALUES = {
    "order_id": "TO-000001",
    "vehicle_id": "AGV-01",
    "lane_id": "A2-A3",
    "zone_id": "FIRE-DOOR",
    "alarm_id": "1",
    "station_id": "ST-B",
    "key_id": "k-none",
    "map_id": "1",
    "decision": "retry",
    "serial_number": "AGV-77",
}


def _allowed(rule: str, role: str) -> bool:
    if rule == "open":
        return True
    lowest, _, plc = rule.partition("+")
    return (role == "plc" and plc == "plc") or (role in RANK and RANK.index(role) >= RANK.index(lowest))


async def test_every_operation_checks_its_role(client: httpx.AsyncClient, service: FleetService) -> None:
    """Each operation of the live spec with no key (401 unless open), and with a key of each role:
    refused with 403 exactly where the table says, let through (whatever it then answers) elsewhere."""
    spec = (await client.get("/openapi.json")).json()
    operations = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    assert operations == set(ACCESS), "classify every new operation in ACCESS"
    for operation, rule in sorted(ACCESS.items()):
        method, template = operation.split(" ")
        path = template.format(**PATH_VALUES)
        params = {"wait": "false"} if path.endswith("/events") else None
        body = {} if method in ("POST", "PATCH") else None
        anonymous = await client.request(method, path, json=body, params=params)
        assert (anonymous.status_code == 401) == (rule != "open"), operation
        for role, key in ROLE_KEYS.items():
            answer = await client.request(method, path, json=body, params=params, headers={"X-API-Key": key})
            if _allowed(rule, role):
                assert answer.status_code not in (401, 403), f"{operation} as {role}: {answer.text}"
            else:
                assert answer.status_code == 403, f"{operation} as {role}: {answer.status_code}"


async def test_a_plc_key_serves_its_own_station_only(client: httpx.AsyncClient, service: FleetService) -> None:
    """A PLC calls for its station and reads its station's orders and calls; another station's
    call is 403 and creates nothing; orders elsewhere are invisible to it."""
    line_b, line_a = {"X-API-Key": "line-b"}, {"X-API-Key": "line-a"}
    call = await client.post(
        "/api/v1/calls", json={"station": "ST-B", "need": "material"}, headers={**line_b, "Idempotency-Key": "b-1"}
    )
    assert call.status_code == 201, call.text
    refused = await client.post("/api/v1/calls", json={"station": "ST-A", "need": "removal"}, headers=line_b)
    assert refused.status_code == 403 and "ST-B" in refused.json()["detail"]
    other = await client.post("/api/v1/orders", json={"from": "ST-C", "to": "ST-C"}, headers={"X-API-Key": "op-secret"})
    elsewhere = await client.post(
        "/api/v1/orders", json={"from": "ST-SD", "to": "ST-D1"}, headers={"X-API-Key": "op-secret"}
    )
    assert elsewhere.status_code == 201, (other.text, elsewhere.text)
    assert service.store.count() == 2
    seen = (await client.get("/api/v1/orders", headers=line_b)).json()
    assert [o["id"] for o in seen] == [call.json()["id"]]
    assert (await client.get("/api/v1/orders", params={"station": "ST-D1"}, headers=line_b)).status_code == 403
    assert (await client.get(f"/api/v1/orders/{elsewhere.json()['id']}", headers=line_b)).status_code == 404
    assert (await client.get(f"/api/v1/orders/{call.json()['id']}", headers=line_b)).status_code == 200
    stations = (await client.get("/api/v1/stations", headers=line_b)).json()
    assert [s["id"] for s in stations] == ["ST-B"]
    assert [c["idempotency_key"] for c in stations[0]["calls"]] == ["b-1"]
    assert [o["id"] for o in stations[0]["open_orders"]] == [call.json()["id"]]
    assert (await client.get("/api/v1/stations/ST-A", headers=line_b)).status_code == 403
    at_a = (await client.get("/api/v1/stations/ST-A", headers=line_a)).json()
    assert [o["id"] for o in at_a["open_orders"]] == [call.json()["id"]], "ST-B's material comes from ST-A"
    all_stations = (await client.get("/api/v1/stations", headers={"X-API-Key": "look-only"})).json()
    assert len(all_stations) == len(service.controller.map.stations)
    assert (await client.get("/api/v1/whoami", headers=line_b)).json() == {"role": "plc", "station": "ST-B"}


def test_a_plc_key_gets_no_event_stream(service: FleetService) -> None:
    with TestClient(create_app(service, keys=KEYS)) as c:
        with pytest.raises(WebSocketDisconnect) as refused, c.websocket_connect("/api/v1/events/ws?key=line-b"):
            pass
        assert refused.value.code == 1008


async def test_an_admin_manages_keys_through_the_api(service: FleetService, tmp_path: Path) -> None:
    """Keys made through the API work at once and are stored hashed; removed, they stop working;
    a plc key must name a known station; an operator may not manage keys."""
    keys = ApiKeys.parse("admin:boss,operator:op-secret").with_file(tmp_path / "keys.json")
    transport = httpx.ASGITransport(app=create_app(service, keys=keys))
    async with httpx.AsyncClient(transport=transport, base_url="http://plant") as c:
        admin = {"X-API-Key": "boss"}
        assert (
            await c.post("/api/v1/keys", json={"role": "viewer"}, headers={"X-API-Key": "op-secret"})
        ).status_code == 403
        made = await c.post("/api/v1/keys", json={"role": "plc", "station": "ST-B"}, headers=admin)
        assert made.status_code == 201, made.text
        new_key, new_id = made.json()["key"], made.json()["id"]
        assert new_key not in (tmp_path / "keys.json").read_text()
        assert (await c.get("/api/v1/whoami", headers={"X-API-Key": new_key})).json()["station"] == "ST-B"
        listed = (await c.get("/api/v1/keys", headers=admin)).json()
        assert [(k["id"], k["role"], k["station"]) for k in listed] == [(new_id, "plc", "ST-B")]
        assert "key" not in listed[0]
        for wrong, field in [
            ({"role": "plc"}, "station"),
            ({"role": "plc", "station": "NOPE"}, "station"),
            ({"role": "viewer", "station": "ST-B"}, "station"),
        ]:
            answer = await c.post("/api/v1/keys", json=wrong, headers=admin)
            assert answer.status_code == 422 and field in answer.text, wrong
        assert (await c.delete(f"/api/v1/keys/{new_id}", headers=admin)).status_code == 204
        assert (await c.get("/api/v1/whoami", headers={"X-API-Key": new_key})).status_code == 401
        assert (await c.delete(f"/api/v1/keys/{new_id}", headers=admin)).status_code == 404
