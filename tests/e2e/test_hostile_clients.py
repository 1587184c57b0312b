"""What a client can do to a real `fleet serve` process, and what it must not achieve: a poison
order stops no dispatching (through a restart too), a key in the address reaches no log and no
audit row, a removed key is refused at once, and the WebSocket event stream works over a real
socket (uvicorn serves it only with a WebSocket library installed)."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error

import pytest
import websockets

from tests.e2e.plant import KEY, Plant, finished_count, request
from tests.waiting import wait_until


def _poison(plant: Plant) -> str:
    """An open order with a due time of 1e300 s written straight into storage (the API refuses
    one; a database from an older version, or edited by hand, may still hold it)."""
    with sqlite3.connect(plant.db) as conn:
        number, body = conn.execute("SELECT number, body FROM transport_orders ORDER BY number DESC").fetchone()
        order = json.loads(body)
        poison_id = f"TO-{number + 1:06d}"
        order |= {"id": poison_id, "state": "accepted", "vehicle_id": None, "due_at": 1e300}
        order["history"] = order["history"][:1]
        conn.execute(
            "INSERT INTO transport_orders (id, number, state, body, updated_at) VALUES (?, ?, 'accepted', ?, 0)",
            (poison_id, number + 1, json.dumps(order)),
        )
    return poison_id


def _wait_finished(plant: Plant, count: int, seconds: float) -> None:
    wait_until(lambda: finished_count(plant.db) >= count, seconds, f"{count} orders finished")


def test_a_poison_order_is_quarantined_and_dispatch_goes_on_through_a_restart(plant: Plant) -> None:
    """An order the solver overflows on is held out with an alarm naming it; every other order
    is dispatched and finished, before and after a restart; the operator cancels it."""
    plant.start_controller()
    request(plant.base, "POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"})
    _wait_finished(plant, 1, 120)
    plant.kill_controller()
    poison = _poison(plant)
    for start in range(2):
        plant.start_controller()
        for pickup, dropoff in (("ST-A", "ST-C"), ("ST-C", "ST-B")):
            request(plant.base, "POST", "/api/v1/orders", {"from": pickup, "to": dropoff})
        _wait_finished(plant, 3 + 2 * start, 240)
        held = request(plant.base, "GET", f"/api/v1/orders/{poison}")
        assert held["state"] == "accepted" and "quarantined" in held["reason"], held  # type: ignore[index]
        alarms = request(plant.base, "GET", "/api/v1/alarms")
        assert any(a["code"] == "order-quarantined" and a["order_id"] == poison for a in alarms)  # type: ignore[union-attr,index]
        health = request(plant.base, "GET", "/api/v1/health")
        assert health["status"] == "degraded" and any(poison in p for p in health["problems"])  # type: ignore[index]
        if start == 0:
            plant.kill_controller()
    cancelled = request(plant.base, "POST", f"/api/v1/orders/{poison}/cancel", {"reason": "bad due time"})
    assert cancelled["state"] == "cancelled"  # type: ignore[index]
    assert request(plant.base, "GET", "/api/v1/health")["status"] == "ok"  # type: ignore[index]


def test_a_key_in_the_address_is_in_no_log_and_no_audit_row(plant: Plant) -> None:
    """`?key=` on a POST and a GET: the access log and the audit log show `key=***`, never the key."""
    plant.start_controller("--log-level", "info")
    request(plant.base, "POST", f"/api/v1/orders?key={KEY}", {"from": "ST-A", "to": "ST-B"})
    request(plant.base, "GET", f"/api/v1/vehicles?key={KEY}")
    request(plant.base, "POST", "/api/v1/lanes/A1-A2/close?other=1&key=" + KEY)
    audit = request(plant.base, "GET", "/api/v1/audit")
    paths = [row["path"] for row in audit]  # type: ignore[union-attr,index]
    assert "/api/v1/orders?key=***" in paths and "/api/v1/lanes/A1-A2/close?other=1&key=***" in paths, paths
    with sqlite3.connect(plant.db) as conn:
        stored = " ".join(path for (path,) in conn.execute("SELECT path FROM audit_log"))
    assert KEY not in stored
    time.sleep(0.5)  # the access log is written after the answer
    log = plant.log.read_text()
    assert "key=***" in log and KEY not in log, log[-2000:]


def test_a_removed_key_is_refused_from_the_next_request(plant: Plant) -> None:
    """`fleet keys remove` on a running controller: the key answered 200 before, 401 right after."""
    key_file = plant.workdir / "no-key-file.json"
    added = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "keys", "add", "--role", "viewer", "--file", str(key_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key_id, _, key = added.splitlines()[0].partition(" (viewer): ")
    plant.start_controller()
    assert request(plant.base, "GET", "/api/v1/whoami", headers={"x-api-key": key})["role"] == "viewer"  # type: ignore[index]
    subprocess.run(
        [sys.executable, "-m", "fleet.cli", "keys", "remove", key_id, "--file", str(key_file)], check=True, timeout=60
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        request(plant.base, "GET", "/api/v1/whoami", headers={"x-api-key": key})
    assert refused.value.code == 401


def test_websocket_events_over_a_real_socket(plant: Plant) -> None:
    """A viewer connects to /api/v1/events/ws of the real server and receives the order it posts."""
    plant.start_controller()
    url = plant.base.replace("http://", "ws://") + f"/api/v1/events/ws?key={KEY}"

    async def follow() -> list[dict[str, object]]:
        async with websockets.connect(url, open_timeout=10) as ws:
            order = await asyncio.to_thread(
                request, plant.base, "POST", "/api/v1/orders", {"from": "ST-A", "to": "ST-B"}
            )
            seen: list[dict[str, object]] = []
            while not any(e.get("kind") == "order" and e["data"]["id"] == order["id"] for e in seen):  # type: ignore[index]
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return seen

    events = asyncio.run(follow())
    assert events and all("seq" in e for e in events)


def _raw(plant: Plant, request_bytes: bytes) -> bytes:
    """Send raw bytes to the server and read its whole answer (the connection is closed after)."""
    with socket.create_connection(("127.0.0.1", plant.port), timeout=10) as conn:
        conn.sendall(request_bytes)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_no_input_resets_the_connection(plant: Plant) -> None:
    """Raw UTF-8 and emoji in the path and in Last-Event-ID, and a 5,000-digit Last-Event-ID, over a
    real socket: each gets an HTTP answer (4xx), none a reset, and the server goes on."""
    plant.start_controller()
    head = f"Host: plant\r\nX-API-Key: {KEY}\r\nConnection: close\r\n".encode()
    cases = {
        "emoji path, raw": b"GET /api/v1/orders/\xf0\x9f\x92\xa5 HTTP/1.1\r\n" + head + b"\r\n",
        "emoji path, encoded": b"GET /api/v1/orders/%F0%9F%92%A5 HTTP/1.1\r\n" + head + b"\r\n",
        "unicode digits": b"GET /api/v1/events?wait=false HTTP/1.1\r\n" + head + "Last-Event-ID: ١٢٣\r\n\r\n".encode(),
        "5,000 digits": b"GET /api/v1/events?wait=false HTTP/1.1\r\n"
        + head
        + b"Last-Event-ID: "
        + b"9" * 5000
        + b"\r\n\r\n",
    }
    for name, raw in cases.items():
        answer = _raw(plant, raw)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
        assert 400 <= status < 500, (name, answer[:200])
    assert request(plant.base, "GET", "/api/v1/health")["status"] == "ok"  # type: ignore[index]
