"""A hot standby: two `fleet serve` processes of one site on one PostgreSQL (the run's own
cluster), the simulated VDA 5050 vehicles as their own process, a real mosquitto, a clock 50
times faster than real time.

The active is SIGKILLed mid-run: the standby takes over within 10 s and finishes every order.
The killed one comes back as the standby; then the active is frozen (SIGSTOP): the other takes
over within 10 s, and the frozen one, thawed, sends nothing more to any vehicle and ends itself.
Through both: every order accepted finished exactly once, orderIds and instant actionIds never
repeat, headerIds of each vehicle's orders only count up, and no collision.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from fleet.storage import database_url
from tests.broker import Broker, Recorder, free_port
from tests.e2e.plant import ROUTES, Plant, request
from tests.storage_targets import postgres_schema
from tests.waiting import wait_until

SITE = "plant-1"
AIM_S = 10.0


class Pair:
    """The two controllers of the site, by name, each on a port of its own."""

    def __init__(self, plant: Plant, url: str) -> None:
        self.plant, self.url = plant, url
        self.ports = {"a": free_port(), "b": free_port()}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.starts = 0

    def start(self, name: str) -> None:
        self.starts += 1
        log = self.logs[name] = self.plant.workdir / f"{name}-{self.starts}.log"
        args = ["--db", self.url, "--port", str(self.ports[name]), "--site", SITE, "--settle-s", "1"]
        self.processes[name] = self.plant._spawn("serve", *args, log=log)

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def ready(self, name: str) -> bool:
        try:
            return bool(request(self.base(name), "GET", "/api/v1/ready")["ready"])  # type: ignore[index]
        except (urllib.error.URLError, ConnectionError):
            return False

    def says(self, name: str, words: str) -> bool:
        return words in self.logs[name].read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def pair(tmp_path: Path, mosquitto: Broker) -> Iterator[tuple[Plant, Pair, Recorder, str]]:
    with postgres_schema() as url:
        plant = Plant(tmp_path, mosquitto)
        recorder = Recorder(mosquitto, "fleetsim")
        controllers = Pair(plant, url)
        try:
            yield plant, controllers, recorder, url
        finally:
            controllers.stop()
            recorder.close()
            plant.stop()


def _stored(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            return {oid: json.loads(body) for oid, body in conn.execute(text("SELECT id, body FROM transport_orders"))}
    finally:
        engine.dispose()


def _finished(url: str) -> int:
    return sum(o["state"] == "finished" for o in _stored(url).values())


def _run_of(ident: str, serial: str) -> str:
    """The run prefix in an orderId (`AGV-01-<run>-000007`) or instant actionId (`AGV-01-ia-<run>-12`)."""
    return ident.removeprefix(serial + "-").removeprefix("ia-").rsplit("-", 1)[0]


def _runs(topic: str, body: dict[str, Any]) -> set[str]:
    """The controller runs a message of theirs names."""
    serial = body["serialNumber"]
    if topic.endswith("/order"):
        return {_run_of(body["orderId"], serial)}
    return {_run_of(a["actionId"], serial) for a in body.get("actions", [])}


def _submit(base: str, count: int, start: int) -> list[str]:
    out = []
    for k in range(start, start + count):
        pickup, dropoff = ROUTES[k % len(ROUTES)]
        out.append(request(base, "POST", "/api/v1/orders", {"from": pickup, "to": dropoff})["id"])  # type: ignore[index]
    return out


def test_the_standby_takes_over_a_killed_and_a_frozen_active(pair: tuple[Plant, Pair, Recorder, str]) -> None:
    plant, controllers, recorder, url = pair
    controllers.start("a")
    wait_until(lambda: controllers.ready("a"), 60, "the first controller is ready")
    controllers.start("b")
    wait_until(lambda: controllers.says("b", "standby for site"), 60, "the second waits as the standby")
    assert not controllers.ready("b"), "a standby serves nothing"
    accepted = _submit(controllers.base("a"), 16, 0)
    wait_until(lambda: _finished(url) >= 4, 300, "a few orders finish")

    killed_at = time.monotonic()
    controllers.processes["a"].send_signal(signal.SIGKILL)
    controllers.processes["a"].wait(timeout=10)
    wait_until(lambda: controllers.ready("b"), 60, "the standby takes over")
    after_kill_s = time.monotonic() - killed_at
    accepted += _submit(controllers.base("b"), 8, 16)
    controllers.start("a")
    wait_until(lambda: controllers.says("a", "standby for site"), 60, "the killed one is the standby now")
    wait_until(lambda: _finished(url) >= 9, 300, "more orders finish")

    frozen = controllers.processes["b"]
    frozen.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    wait_until(lambda: controllers.ready("a"), 60, "the standby takes over from the frozen one")
    taken_at = time.monotonic()
    after_freeze_s = taken_at - frozen_at
    frozen.send_signal(signal.SIGCONT)
    assert frozen.wait(timeout=30) == 3, "thawed, it knows it lost the lease and ends itself"
    assert controllers.says("b", "stepping down")

    wait_until(lambda: _finished(url) == len(accepted), 600, "every order finishes")
    stored = _stored(url)
    assert sorted(stored) == sorted(accepted), "nothing lost, nothing created twice"
    for oid, order in stored.items():
        states = [t[1] for t in order["history"]]
        assert states.count("finished") == 1 and states[-1] == "finished", f"{oid}: {states}"

    sent = [(at, topic, body) for at, topic, body in recorder.messages if topic.endswith(("/order", "/instantActions"))]
    b_runs = set().union(
        *(_runs(t, body) for at, t, body in sent if t.endswith("/order") and killed_at < at < frozen_at)
    )
    late = [body for at, topic, body in sent if at > taken_at and _runs(topic, body) & b_runs]
    assert b_runs and late == [], "the frozen controller sent nothing after the takeover"
    for serial in {body["serialNumber"] for _, _, body in sent}:
        headers = [body["headerId"] for body in recorder.of(serial, "order")]
        assert headers == sorted(set(headers)), f"{serial}: order headerIds never repeat, only count up"
        actions = [a["actionId"] for body in recorder.of(serial, "instantActions") for a in body["actions"]]
        assert len(actions) == len(set(actions)), f"{serial}: instant actionIds never repeat"
    plant.stop()
    report = json.loads(plant.report.read_text())
    assert report["collisions"] == [], report["collisions"]
    print(f"takeover after SIGKILL {after_kill_s:.1f} s, after SIGSTOP {after_freeze_s:.1f} s (aim {AIM_S:.0f} s)")
    assert after_kill_s < AIM_S and after_freeze_s < AIM_S
