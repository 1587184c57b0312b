"""A plant of real processes for end-to-end tests: mosquitto (owned by the test), the simulated
VDA 5050 vehicles (`fleet-sim vehicles`, which outlive the controller and keep driving what was
released to them) and (re)startable controllers (`fleet serve`, SQLite in WAL mode), on a clock
50 times faster than real time on one shared anchor."""

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
from pathlib import Path

import pytest

from tests.broker import Broker, free_port

SPEED = 50.0
ORDERS, CALLS = 45, 15
KEY = "e2e-operator"
ROUTES = [("ST-A", "ST-B"), ("ST-A", "ST-C"), ("ST-C", "ST-B"), ("ST-SD", "ST-D1"), ("ST-SD", "ST-C")]
CALL_STATIONS = [("ST-B", "material"), ("ST-D1", "material"), ("ST-A", "removal")]


def request(base: str, method: str, path: str, body: object = None, headers: dict[str, str] | None = None) -> object:
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

    def __init__(self, workdir: Path, broker: Broker, db: Path | None = None, vehicles: int = 4) -> None:
        self.workdir = workdir
        self.db = db or workdir / "fleet.db"
        self.anchor = time.time()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        self.env |= {
            "FLEET_MQTT_URL": broker.url,
            "FLEET_API_KEYS": f"operator:{KEY}",
            "FLEET_API_KEY_FILE": str(workdir / "no-key-file.json"),
            # The fleet `fleet-sim vehicles` simulates: a plant's controller admits no other vehicle.
            "FLEET_VEHICLES": " ".join(f"fleetsim/AGV-{k:02d}" for k in range(1, vehicles + 1)),
        }
        self.report = workdir / "vehicles.json"
        self.vehicles = self._spawn(
            "vehicles", "--count", str(vehicles), "--report", str(self.report), log=workdir / "vehicles.log"
        )
        self.controller: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, command: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
        cli = "fleet.cli" if command == "serve" else "sim.cli"
        cmd = [sys.executable, "-m", cli, command, "--map", "small_test", "--speed", str(SPEED)]
        cmd += ["--clock-anchor", repr(self.anchor), *args]
        with log.open("ab") as out:
            return subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start_controller(self, *args: str) -> None:
        self.starts += 1
        log = self.log = self.workdir / f"controller-{self.starts}.log"
        self.controller = self._spawn("serve", "--db", str(self.db), "--port", str(self.port), *args, log=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.controller.poll() is not None:
                pytest.fail(f"controller exited: {log.read_text()[-3000:]}")
            try:
                request(self.base, "GET", "/api/v1/health")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        pytest.fail("controller did not answer within 30 s")

    def kill_controller(self) -> None:
        assert self.controller is not None
        self.controller.send_signal(signal.SIGKILL)
        self.controller.wait(timeout=10)

    def stop(self) -> None:
        stop_processes(self.controller, self.vehicles)


def stop_processes(*processes: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM each process the test started that still runs, SIGKILL after 15 s."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def stored_orders(db: Path) -> dict[str, dict[str, object]]:
    with sqlite3.connect(db) as conn:
        return {oid: json.loads(body) for oid, body in conn.execute("SELECT id, body FROM transport_orders")}


def finished_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM transport_orders WHERE state = 'finished'").fetchone()[0])
