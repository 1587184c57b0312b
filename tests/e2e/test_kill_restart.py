"""The controller process SIGKILLed in the middle of a run and started again: every order it
accepted before the kill finishes exactly once.

Three real processes, as in a plant: mosquitto, the simulated VDA 5050 vehicles (`fleet
vehicles`, which outlive the controller and keep driving what was released to them), and the
controller (`fleet serve`, SQLite in WAL mode). 100 transports are accepted through the HTTP API
(75 orders and 25 PLC calls with idempotency keys); when a quarter have finished the controller
is killed with SIGKILL, started again on the same database, and must take every open order and
every vehicle back (vehicles mid-base included). Both processes run a clock 50 times faster than
real time on one shared anchor.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker, free_port

SPEED = 50.0
ORDERS, CALLS = 75, 25
KEY = "e2e-operator"
ROUTES = [("ST-A", "ST-B"), ("ST-A", "ST-C"), ("ST-C", "ST-B"), ("ST-SD", "ST-D1"), ("ST-SD", "ST-C")]
CALL_STATIONS = [("ST-B", "material"), ("ST-D1", "material"), ("ST-A", "removal")]


def _request(base: str, method: str, path: str, body: object = None, headers: dict[str, str] | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    req.add_header("content-type", "application/json")
    req.add_header("x-api-key", KEY)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


class Plant:
    """The broker, the vehicles process and (re)startable controller processes."""

    def __init__(self, workdir: Path, broker: Broker) -> None:
        self.workdir = workdir
        self.db = workdir / "fleet.db"
        self.anchor = time.time()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        self.env |= {
            "FLEET_MQTT_URL": broker.url,
            "FLEET_API_KEYS": f"operator:{KEY}",
            "FLEET_API_KEY_FILE": str(workdir / "no-key-file.json"),
        }
        self.report = workdir / "vehicles.json"
        self.vehicles = self._spawn(
            "vehicles", "--count", "4", "--report", str(self.report), log=workdir / "vehicles.log"
        )
        self.controller: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, command: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "sim.cli", command, "--map", "small_test", "--speed", str(SPEED)]
        cmd += ["--clock-anchor", repr(self.anchor), *args]
        with log.open("ab") as out:
            return subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start_controller(self) -> None:
        self.starts += 1
        log = self.workdir / f"controller-{self.starts}.log"
        self.controller = self._spawn("serve", "--db", str(self.db), "--port", str(self.port), log=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                pytest.fail(f"controller exited: {log.read_text()[-3000:]}")
            try:
                _request(self.base, "GET", "/api/v1/health")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        pytest.fail("controller did not answer within 30 s")

    def kill_controller(self) -> None:
        assert self.controller is not None
        self.controller.send_signal(signal.SIGKILL)
        self.controller.wait(timeout=10)

    def stop(self) -> None:
        for process in (self.controller, self.vehicles):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
def plant(tmp_path: Path, mosquitto: Broker) -> Iterator[Plant]:
    running = Plant(tmp_path, mosquitto)
    try:
        yield running
    finally:
        running.stop()


def _stored(db: Path) -> dict[str, dict[str, object]]:
    with sqlite3.connect(db) as conn:
        return {oid: json.loads(body) for oid, body in conn.execute("SELECT id, body FROM transport_orders")}


def _finished(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM transport_orders WHERE state = 'finished'").fetchone()[0])


def test_sigkill_mid_run_loses_no_order_and_finishes_each_once(plant: Plant) -> None:
    plant.start_controller()
    accepted: list[str] = []
    calls: dict[str, str] = {}
    for k in range(ORDERS + CALLS):
        if k % 4 == 3 and len(calls) < CALLS:
            station, need = CALL_STATIONS[len(calls) % len(CALL_STATIONS)]
            key = f"plc-call-{len(calls)}"
            order = _request(
                plant.base, "POST", "/api/v1/calls", {"station": station, "need": need}, {"Idempotency-Key": key}
            )
            calls[key] = order["id"]  # type: ignore[index]
        else:
            pickup, dropoff = ROUTES[k % len(ROUTES)]
            order = _request(plant.base, "POST", "/api/v1/orders", {"from": pickup, "to": dropoff})
        accepted.append(order["id"])  # type: ignore[index]
    assert len(set(accepted)) == ORDERS + CALLS

    # Generous deadlines: a slow run is no lost order. (Runs that stalled here had a dead MQTT
    # sender: a publish timed out while the controller read its backlog of states, and it
    # never sent again; see `MqttEndpoint._run`.)
    deadline = time.monotonic() + 400
    while _finished(plant.db) < 0.25 * len(accepted):
        assert time.monotonic() < deadline, f"only {_finished(plant.db)} finished before the kill"
        time.sleep(0.5)
    plant.kill_controller()
    finished_at_kill = _finished(plant.db)
    open_at_kill = len(accepted) - finished_at_kill
    plant.start_controller()

    # A PLC that retries its calls after the crash gets the orders it got before, nothing new.
    for key in list(calls)[:10]:
        station, need = CALL_STATIONS[list(calls).index(key) % len(CALL_STATIONS)]
        again = _request(
            plant.base, "POST", "/api/v1/calls", {"station": station, "need": need}, {"Idempotency-Key": key}
        )
        assert again["id"] == calls[key]  # type: ignore[index]

    deadline = time.monotonic() + 480
    while _finished(plant.db) < len(accepted):
        assert time.monotonic() < deadline, f"{_finished(plant.db)} of {len(accepted)} finished after the restart"
        time.sleep(0.5)

    stored = _stored(plant.db)
    assert sorted(stored) == sorted(accepted), "nothing lost, nothing created twice"
    for oid, order in stored.items():
        states = [t[1] for t in order["history"]]  # type: ignore[union-attr]
        assert states.count("finished") == 1, f"{oid}: {states}"
        assert states.count("loading") >= 1 and states[-1] == "finished", f"{oid}: {states}"
    assert 0 < finished_at_kill < len(accepted) and open_at_kill > 0
    plant.stop()
    report = json.loads(plant.report.read_text())
    assert report["collisions"] == [], report["collisions"]
