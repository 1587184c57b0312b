"""The server shell: the controller for a real plant (or a plant simulated in other processes)
with VDA 5050 over MQTT, durable storage and the HTTP API, on one asyncio loop.

The loop feeds the core what the vehicles said (through the VDA 5050 gateway) and a `Tick`
every `tick_s` wall seconds, commits the order changes it reports, and sends its commands. API
routes run on the same loop, so the core has a single writer. On start the controller takes
back every unfinished order from storage (`FleetService`), and each vehicle as it reports in,
with the base it still drives (`MasterControl` adopts it): nothing accepted is lost when the
process dies, however it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.clock import Clock, WallClock
from fleet.core import Controller, ControllerConfig
from fleet.events import Command, Event, Tick
from fleet.lease import Lease
from fleet.ros.config import RosConfig
from fleet.ros.gateway import RosGateway
from fleet.service import FleetService
from fleet.solver_pool import SolverPool
from fleet.storage import OrderStore
from fleet.vda5050.gateway import VdaGateway
from fleet.vda5050.master import MasterConfig, MasterControl, VehicleSettings
from fleet.vda5050.mqtt import MqttBus, MqttSettings
from maps import FacilityMap, parse_map

log = logging.getLogger(__name__)


class Adapter(Protocol):
    """A vehicle or peripheral adapter as the shell drives it (`VdaGateway`, `RosGateway`)."""

    on_events: Callable[[], None] | None

    def take_events(self) -> list[Event]: ...

    def apply(self, commands: list[Command]) -> list[Command]: ...

    def tick(self) -> None: ...


@dataclass
class Server:
    """One controller process: core, storage, and its adapters (VDA 5050 on MQTT, ROS 2 over
    rosbridge). Each adapter takes the commands that are its own and passes the rest on."""

    service: FleetService
    adapters: list[Adapter]
    bus: MqttBus | None = None
    solver_pool: SolverPool | None = None
    tick_s: float = 0.1
    # With a site lease (`fleet.lease`): the server acts only while it is valid; once it is not,
    # nothing more goes to any vehicle and `on_lease_lost` is called (the CLI ends the process).
    lease: Lease | None = None
    on_lease_lost: Callable[[str], None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Until `stop`: adapter events (as soon as they come) and ticks (at least every
        `tick_s`) in, commits and commands out."""
        controller = self.service.controller
        for adapter in self.adapters:
            adapter.on_events = self._wake.set
        keeping = None
        if self.lease is not None:
            # Start-up (restoring orders, the solver process, the port) took part of the ttl:
            # renewed now, or taken again with the next token if it ran out and nobody took it.
            await asyncio.to_thread(self.lease.renew)
            keeping = asyncio.create_task(self._keep_lease())
        try:
            await self._loop(controller)
        finally:
            if keeping is not None:
                keeping.cancel()
                await asyncio.gather(keeping, return_exceptions=True)

    async def _loop(self, controller: Controller) -> None:
        while not self._stop.is_set():
            if self.lease is not None and not self.lease.valid:
                self._lease_lost()
                return
            self._wake.clear()
            for adapter in self.adapters:
                adapter.tick()
            events = [e for adapter in self.adapters for e in adapter.take_events()]
            for event in [*events, Tick()]:
                kind = type(event).__name__
                try:
                    commands = controller.handle(event)
                except Exception as exc:  # one event the core trips on must not stop the plant's controller
                    why = f"{type(exc).__name__}: {exc}"[:300]
                    if self.service.problems.get(f"core ({kind})") != why:  # logged once, not every tick
                        log.exception("event %r failed; the controller goes on", event)
                    self.service.problems[f"core ({kind})"] = why
                    continue
                self.service.problems.pop(f"core ({kind})", None)
                self.service.record(commands)
                for adapter in self.adapters:
                    commands = adapter.apply(commands)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def _keep_lease(self) -> None:
        """Renew the lease every quarter of its ttl, in a thread: a database that hangs must not
        stall the loop (the lease then runs out by itself, and `_loop` sees it)."""
        assert self.lease is not None
        while True:
            await asyncio.sleep(self.lease.ttl_s / 4)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.lease.renew)

    def _lease_lost(self) -> None:
        assert self.lease is not None
        why = f"site {self.lease.site}: lease (token {self.lease.token}) lost or not renewed in time"
        log.critical("%s: stepping down, nothing more is sent to any vehicle", why)
        self.service.problems["lease"] = why
        if self.on_lease_lost is not None:
            self.on_lease_lost(why)

    @property
    def ros(self) -> RosGateway | None:
        """The ROS 2 adapter among the adapters, if any (its bridges connect in the lifespan)."""
        return next((a for a in self.adapters if isinstance(a, RosGateway)), None)


def run_prefix() -> str:
    """A short token put in this run's VDA 5050 orderIds (base 36 of the start second and two
    random characters), so ids never repeat across restarts."""
    stamp, digits, base = int(time.time()), "", "0123456789abcdefghijklmnopqrstuvwxyz"
    while stamp:
        stamp, rest = divmod(stamp, 36)
        digits = base[rest] + digits
    return f"{digits}{secrets.choice(base)}{secrets.choice(base)}-"


HEADER_EPOCH = 1_735_689_600  # 2025-01-01 UTC


def header_base(now: float) -> int:
    """Where this run's VDA 5050 headerIds start: four per second of the controller's clock
    since 2025, so a run (or a standby taking over) starts above where an earlier one got to,
    unless that one sent more than four messages a second on one topic to one vehicle on average
    (headerId is a uint32: enough until 2058). The clock, not wall time: a plant simulated
    faster than real time also sends faster."""
    return max(0, int((now - HEADER_EPOCH) * 4))


def build_server(
    fmap: FacilityMap,
    store: OrderStore,
    mqtt: MqttSettings,
    clock: Clock | None = None,
    config: ControllerConfig | None = None,
    master_config: MasterConfig | None = None,
    settle_s: float = 5.0,
    ros: RosConfig | None = None,
    solve_aside: bool = True,
    lease: Lease | None = None,
) -> Server:
    """A controller for `fmap` on `store` and the broker of `mqtt` (and the ROS 2 robots and
    cells of `ros`). For `settle_s` seconds of its clock after start it releases no path, while
    the vehicles report where they stand. With `solve_aside`, dispatch solves run in a process
    of their own (`fleet.solver_pool`): the loop answers requests and reads vehicle states
    meanwhile."""
    clock = clock or WallClock()
    pool = SolverPool() if solve_aside else None
    controller = Controller(fmap, clock, config, stopwatch=time.perf_counter, solver_pool=pool)
    controller.hold_releases(clock.now() + settle_s)
    service = FleetService(controller, store)
    master_config = master_config or MasterConfig()
    master_config.order_prefix = master_config.order_prefix or run_prefix()
    master_config.header_base = master_config.header_base or header_base(clock.now())
    for serial, manufacturer in store.admitted_vehicles().items():  # admitted by an operator earlier
        master_config.vehicles.setdefault(serial, VehicleSettings(manufacturer=manufacturer))
    master = MasterControl(fmap, master_config)
    bus = MqttBus(mqtt)
    if lease is not None:
        bus.gate = lambda: lease.valid  # checked at every publish: a stale active sends nothing
    gateway = VdaGateway(controller, master, bus)
    bus.on_published = gateway.published
    gateway.start()
    service.metric_sources.append(master.metrics)
    service.metric_sources.append(bus.metrics)
    service.map_listeners.append(master.use_map)
    service.admission = gateway  # operators admit vehicles that reported in but are not in the fleet
    adapters: list[Adapter] = [gateway]
    if ros is not None and (ros.robots or ros.cells):
        ros_gateway = RosGateway(controller, ros)
        service.cells = ros_gateway  # operators retry or abort its cells' transfers
        adapters.insert(0, ros_gateway)  # first: picks and drops at cell stations are the cell's
    return Server(service, adapters, bus, pool, lease=lease)


def active_map(store: OrderStore, configured: FacilityMap) -> FacilityMap:
    """The map activated last through the API (kept in storage), else the configured one."""
    stored = store.active_map()
    return parse_map(stored.body, f"stored map {stored.id}") if stored else configured


def create_server_app(server: Server, keys: ApiKeys | None = None) -> FastAPI:
    """The API of a server, with the server's loop and its MQTT clients run by the app's lifespan."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if server.bus is not None:
            await server.bus.start()
        if server.ros is not None:
            server.ros.start()  # connects on this loop
        task = asyncio.create_task(server.run())
        try:
            yield
        finally:
            server.stop()
            await task
            if server.ros is not None:
                server.ros.stop()
            if server.bus is not None:
                await server.bus.stop()
            if server.solver_pool is not None:
                server.solver_pool.close()
            await server.service.close()
            if server.lease is not None:
                server.lease.release()  # a clean stop: the standby takes over at once

    return create_app(server.service, lifespan, keys)


def tune_garbage_collection() -> None:
    """For a long-running controller: move what start-up built (map, graphs, restored orders) out
    of the collector's way, and collect the young generation less often. A full collection over
    tens of thousands of order objects otherwise stalls the one loop for 100 ms and more, and
    every API answer waiting meanwhile with it (`bench/api_load.py`: p99 202 -> 130 ms)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
