"""The demo shell: the simulated plant in (scaled) real time behind the controller's HTTP API.

One asyncio loop runs the simulation steps, the API routes and (with a broker) every MQTT client,
so the core keeps its single writer. Order changes are committed to SQLite as the core reports
them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.service import FleetService
from fleet.solver_pool import SolverPool
from fleet.storage import OrderStore
from fleet.vda5050.mqtt import MqttBus, MqttSettings
from maps import load_map, parse_map
from sim.fleets import VdaFleet
from sim.runner import SimConfig, Simulation

log = logging.getLogger(__name__)
_MAX_LAG_S = 1.0  # wall seconds behind schedule before the loop stops trying to catch up


async def run_live(sim: Simulation, speed: float, stop: asyncio.Event, problems: dict[str, str] | None = None) -> None:
    """Step the simulation so that simulated time runs `speed` times faster than wall time. A
    step that raises is logged and put in `problems` (readiness says it), and the loop goes on."""
    loop = asyncio.get_running_loop()
    wall_per_step = sim.config.step_s / speed
    started, steps = loop.time(), 0
    while not stop.is_set():
        try:
            sim.step()
            if problems is not None:
                problems.pop("simulation", None)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"[:300]
            if problems is None or problems.get("simulation") != why:  # logged once, not every step
                log.exception("a simulation step failed; the simulation goes on")
            if problems is not None:
                problems["simulation"] = why
        steps += 1
        delay = started + steps * wall_per_step - loop.time()
        if delay < -_MAX_LAG_S:
            started, steps = loop.time(), 0
        await asyncio.sleep(max(delay, 0.0))


def build_live_plant(
    map_name: str,
    vehicles: int,
    orders_per_hour: float | None,
    seed: int,
    db_path: str | Path,
    protocol: str = "direct",
    mqtt: MqttSettings | None = None,
    cells: tuple[str, ...] = (),
    cell_failure_rate: float = 0.0,
) -> tuple[Simulation, FleetService, MqttBus | None]:
    """A simulation starting at the current wall time, wired to a service with SQLite storage.

    With `mqtt` settings the vehicles speak VDA 5050 through that broker (each its own client);
    otherwise `protocol` chooses direct commands or VDA 5050 over the in-process bus.
    """
    store = OrderStore(db_path)
    active = store.active_map()  # a map activated through the API wins over the configured one
    fmap = parse_map(active.body, f"stored map {active.id}") if active else load_map(map_name)
    bus = MqttBus(mqtt) if mqtt is not None else None
    config = SimConfig(
        vehicles=vehicles,
        hours=math.inf,
        seed=seed,
        orders_per_hour=orders_per_hour,
        protocol="vda5050" if bus is not None else protocol,
        cells=cells,
        cell_failure_rate=cell_failure_rate,
    )
    # Solves in a process of their own: the API and the simulated plant go on meanwhile.
    pool = SolverPool()
    sim = Simulation(fmap, config, start_time=time.time(), bus=bus, stopwatch=time.perf_counter, solver_pool=pool)
    service = FleetService(sim.controller, store)
    sim.listeners.append(service.record)
    service.map_listeners.append(sim.use_map)
    service.cells = sim.cells  # operators retry or abort the simulated cells' transfers
    if isinstance(sim.fleet, VdaFleet):
        service.metric_sources.append(sim.fleet.master.metrics)
        if bus is not None:
            bus.on_published = sim.fleet.gateway.published
    if bus is not None:
        service.metric_sources.append(bus.metrics)
    return sim, service, bus


def create_demo_app(
    map_name: str = "solar_module_plant",
    vehicles: int = 12,
    speed: float = 1.0,
    orders_per_hour: float | None = None,
    seed: int = 1,
    db_path: str | Path = "var/fleet.db",
    protocol: str = "direct",
    mqtt: MqttSettings | None = None,
    keys: ApiKeys | None = None,
    cells: tuple[str, ...] = (),
    cell_failure_rate: float = 0.0,
) -> FastAPI:
    """The controller API with a simulated plant driving its vehicles at `speed` x real time
    (and simulated robot cells at the stations `cells`)."""
    sim, service, bus = build_live_plant(
        map_name, vehicles, orders_per_hour, seed, db_path, protocol, mqtt, cells, cell_failure_rate
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if bus is not None:
            await bus.start()
            await bus.wait_connected(timeout=30)
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(sim, speed, stop, service.problems))
        try:
            yield
        finally:
            stop.set()
            await task
            if bus is not None:
                await bus.stop()
            if sim.solver_pool is not None:
                sim.solver_pool.close()
            await service.close()

    return create_app(service, lifespan, keys)
