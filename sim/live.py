"""The demo shell: the simulated plant in (scaled) real time behind the controller's HTTP API.

One asyncio loop runs both the simulation steps and the API routes, so the core keeps its single
writer. Order changes are committed to SQLite as the core reports them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from fleet.api import create_app
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import load_map
from sim.runner import SimConfig, Simulation

_MAX_LAG_S = 1.0  # wall seconds behind schedule before the loop stops trying to catch up


async def run_live(sim: Simulation, speed: float, stop: asyncio.Event) -> None:
    """Step the simulation so that simulated time runs `speed` times faster than wall time."""
    loop = asyncio.get_running_loop()
    wall_per_step = sim.config.step_s / speed
    started, steps = loop.time(), 0
    while not stop.is_set():
        sim.step()
        steps += 1
        delay = started + steps * wall_per_step - loop.time()
        if delay < -_MAX_LAG_S:
            started, steps = loop.time(), 0
        await asyncio.sleep(max(delay, 0.0))


def build_live_plant(
    map_name: str, vehicles: int, orders_per_hour: float | None, seed: int, db_path: str | Path
) -> tuple[Simulation, FleetService]:
    """A simulation starting at the current wall time, wired to a service with SQLite storage."""
    fmap = load_map(map_name)
    config = SimConfig(vehicles=vehicles, hours=math.inf, seed=seed, orders_per_hour=orders_per_hour)
    sim = Simulation(fmap, config, start_time=time.time())
    service = FleetService(sim.controller, OrderStore(db_path))
    sim.listeners.append(service.record)
    return sim, service


def create_demo_app(
    map_name: str = "solar_module_plant",
    vehicles: int = 12,
    speed: float = 1.0,
    orders_per_hour: float | None = None,
    seed: int = 1,
    db_path: str | Path = "var/fleet.db",
) -> FastAPI:
    """The controller API with a simulated plant driving its vehicles at `speed` x real time."""
    sim, service = build_live_plant(map_name, vehicles, orders_per_hour, seed, db_path)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(run_live(sim, speed, stop))
        try:
            yield
        finally:
            stop.set()
            await task
            service.store.close()

    return create_app(service, lifespan)
