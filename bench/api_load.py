"""PLC calls per second the API accepts durably, with latency, on SQLite and on PostgreSQL.

Run: `python bench/api_load.py` (SQLite only), or with `--postgres postgresql://user@host/db`
for both; `--clients 50 --seconds 20`.

Protocol: a real `fleet-sim demo` process (the solar-module plant with 12 simulated carts moving,
the dispatcher running, the audit log on) on a free loopback port, storage in a fresh SQLite
file (WAL, synchronous=FULL) or a fresh PostgreSQL schema. From this process, `--clients`
concurrent HTTP clients (httpx, keep-alive) each send `POST /api/v1/calls` back to back with a
unique Idempotency-Key, for stations that take material, for `--seconds` after a 3 s warm-up.
A call counts when it got its 201, which the API sends only after the call and its order are
committed. Printed per backend: accepted calls per second, median and p99 latency, errors;
then every accepted order is looked up in the database to check it was really stored.
Aim from issue 6: 500 durable calls/s with p99 under 100 ms on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fleet.storage import database_url
from tests.broker import free_port

KEY = "bench-operator"


def start_demo(db: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env |= {"FLEET_API_KEYS": f"operator:{KEY}", "FLEET_API_KEY_FILE": str(workdir / "none.json")}
    cmd = [sys.executable, "-m", "sim.cli", "demo", "--port", str(port), "--db", db, "--vehicles", "12"]
    log = (workdir / "demo.log").open("ab")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"demo did not start: {(workdir / 'demo.log').read_text()[-2000:]}")


async def load(base: str, clients: int, seconds: float) -> tuple[list[float], list[str], int]:
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as probe:
        stations = [s["id"] for s in (await probe.get("/api/v1/stations")).json() if s["kind"] in ("dropoff", "both")]
    latencies: list[float] = []
    accepted: list[str] = []
    errors = 0
    warm_until = time.perf_counter() + 3.0
    stop_at = warm_until + seconds

    async def client(k: int) -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as c:
            n = 0
            while (started := time.perf_counter()) < stop_at:
                n += 1
                body = {"station": stations[(k + n) % len(stations)], "need": "material"}
                try:
                    r = await c.post("/api/v1/calls", json=body, headers={"Idempotency-Key": secrets.token_hex(8)})
                except httpx.HTTPError:
                    errors += 1
                    continue
                if started < warm_until:
                    continue
                if r.status_code == 201:
                    latencies.append(time.perf_counter() - started)
                    accepted.append(r.json()["id"])
                else:
                    errors += 1

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, accepted, errors


def stored_ids(db: str) -> set[str]:
    engine = create_engine(database_url(db))
    with engine.connect() as conn:
        found = {row[0] for row in conn.execute(text("SELECT id FROM transport_orders"))}
    engine.dispose()
    return found


def run(backend: str, db: str, clients: int, seconds: float, workdir: Path) -> None:
    port = free_port()
    process = start_demo(db, port, workdir)
    try:
        latencies, accepted, errors = asyncio.run(load(f"http://127.0.0.1:{port}", clients, seconds))
    finally:
        process.terminate()
        process.wait(timeout=20)
    missing = set(accepted) - stored_ids(db)
    latencies.sort()
    p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    print(
        f"| {backend} | {clients} | {len(accepted) / seconds:.0f} | {p50:.1f} | {p99:.1f} | {errors} "
        f"| {len(accepted)} accepted, {len(missing)} not in the database |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL: also measure on a fresh schema there")
    args = parser.parse_args()
    print("| storage | clients | calls/s accepted | median ms | p99 ms | errors | durability check |")
    print("|---|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        run("SQLite (WAL, synchronous=FULL)", str(workdir / "fleet.db"), args.clients, args.seconds, workdir)
        if args.postgres:
            schema = f"bench_{secrets.token_hex(4)}"
            admin = create_engine(database_url(args.postgres))
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            sep = "&" if "?" in args.postgres else "?"
            try:
                run(
                    "PostgreSQL",
                    f"{args.postgres}{sep}options=-csearch_path%3D{schema}",
                    args.clients,
                    args.seconds,
                    workdir,
                )
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


if __name__ == "__main__":
    main()
