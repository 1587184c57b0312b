"""The controller's database on a 16 MB filesystem that fills up mid-run and is freed again, then
the controller SIGKILLed and restarted: acknowledged means committed, and nothing is doubled.

Asserted against storage after recovery and restart: every acknowledged order and call is stored
exactly once; a request answered 503 was not carried out; every order finished while the disk
was full is finished in storage, once; no idempotency key ever made a second order; while the
disk was full `/ready` said why and new work was refused with 503. Needs root (to mount tmpfs).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.e2e.plant import ROUTES, Plant, finished_count, request, stored_orders
from tests.waiting import wait_until

CALL = {"station": "ST-B", "need": "material"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a 16 MB tmpfs and needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


def _post(plant: Plant, path: str, body: object, key: str | None = None) -> tuple[int, str | None]:
    headers = {"Idempotency-Key": key} if key else None
    try:
        answer = request(plant.base, "POST", path, body, headers)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    return 200, answer["id"]  # type: ignore[index]


def _ready(plant: Plant) -> tuple[bool, list[str]]:
    try:
        answer = request(plant.base, "GET", "/api/v1/ready")
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        return False, body["problems"]
    return True, answer["problems"]  # type: ignore[index]


def test_a_full_disk_loses_and_doubles_nothing(tmp_path: Path, mosquitto: Broker, small_disk: Path) -> None:
    plant = Plant(tmp_path, mosquitto, db=small_disk / "fleet.db")
    try:
        plant.start_controller()
        acknowledged: dict[str, str] = {}  # order id -> how it came
        keys: dict[str, str] = {}  # idempotency key -> order id
        for k in range(8):
            if k % 2:
                status, oid = _post(plant, "/api/v1/calls", CALL, f"before-{k}")
                keys[f"before-{k}"] = oid or ""
            else:
                pickup, dropoff = ROUTES[k % len(ROUTES)]
                status, oid = _post(plant, "/api/v1/orders", {"from": pickup, "to": dropoff})
            assert status == 200 and oid is not None
            acknowledged[oid] = f"before {k}"
        wait_until(lambda: finished_count(plant.db) >= 1, 180, "an order finished before the disk filled")

        filler = _fill(small_disk)
        # Vehicles finishing orders write; the first failed batch makes the controller refuse work.
        wait_until(lambda: not _ready(plant)[0], 120, "/ready says storage does not commit")
        assert any("storage does not commit" in p for p in _ready(plant)[1]), _ready(plant)
        refused_orders = [_post(plant, "/api/v1/orders", {"from": "ST-A", "to": "ST-B"}) for _ in range(5)]
        assert all(status == 503 for status, _ in refused_orders), refused_orders
        during = {f"during-{k}": _post(plant, "/api/v1/calls", CALL, f"during-{k}") for k in range(5)}
        assert all(status == 503 for status, _ in during.values()), during
        in_memory_finished = {
            o["id"]
            for o in request(plant.base, "GET", "/api/v1/orders?state=finished&limit=1000")  # type: ignore[union-attr,index]
        }
        time.sleep(6)  # vehicles go on finishing orders meanwhile (300 simulated s); storage holds none of it yet

        filler.unlink()
        wait_until(lambda: _ready(plant)[0], 60, "/ready again once the disk has room")
        for key in during:  # the PLC retries its refused calls: each makes exactly one order now
            status, oid = _post(plant, "/api/v1/calls", CALL, key)
            assert status == 200 and oid is not None
            keys[key], acknowledged[oid] = oid, key
        for key in list(during)[:3]:  # and again: the same order, nothing new
            assert _post(plant, "/api/v1/calls", CALL, key) == (200, keys[key])

        wait_until(
            lambda: in_memory_finished <= {i for i, o in stored_orders(plant.db).items() if o["state"] == "finished"},
            60,
            "the orders finished during the outage are finished in storage",
        )
        plant.kill_controller()
        plant.start_controller()
        for key, oid in keys.items():  # after the restart too, every key answers its one order
            assert _post(plant, "/api/v1/calls", CALL, key) == (200, oid), key
        wait_until(lambda: finished_count(plant.db) >= len(acknowledged), 420, "every acknowledged order finished")

        stored = stored_orders(plant.db)
        assert sorted(stored) == sorted(acknowledged), "every acknowledged order once, nothing refused carried out"
        for oid, order in stored.items():
            states = [t[1] for t in order["history"]]  # type: ignore[union-attr]
            assert states.count("finished") == 1 and states[-1] == "finished", f"{oid}: {states}"
        with sqlite3.connect(plant.db) as conn:
            calls = dict(conn.execute("SELECT idempotency_key, order_id FROM calls").fetchall())
        assert calls == keys, "one call row per key, each with its one order"
    finally:
        plant.stop()
