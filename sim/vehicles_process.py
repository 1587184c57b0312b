"""Simulated VDA 5050 vehicles as a process of their own, reaching the controller only through
an MQTT broker, as a plant's vehicles do: the controller process can die and restart while they
keep driving their base and keep reporting.

Time is a `ScaledClock` shared with the controller (same anchor and speed). The collision oracle
watches the vehicles' footprints (claims are the controller's, in another process); a JSON
report of collisions and distances is written when the process is told to stop (SIGTERM/SIGINT).
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from fleet.clock import ScaledClock
from fleet.vda5050.mqtt import MqttBus, MqttSettings
from maps import FacilityMap
from sim.fleets import connect_vda_vehicle, simulated_vda_vehicles, step_vda_vehicles
from sim.oracle import CollisionOracle


async def run_vehicles(
    fmap: FacilityMap,
    count: int,
    seed: int,
    mqtt: MqttSettings,
    clock: ScaledClock,
    report: Path | None = None,
    step_s: float = 0.5,
) -> CollisionOracle:
    """Drive `count` vehicles until SIGTERM or SIGINT; step every `step_s` of simulated time."""
    bus = MqttBus(mqtt)
    vehicles = simulated_vda_vehicles(fmap, count, seed)
    for v in vehicles:
        connect_vda_vehicle(bus, v, clock.now)
    oracle = CollisionOracle()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await bus.start()
    last = clock.now()
    try:
        while not stop.is_set():
            await asyncio.sleep(clock.wall_seconds(step_s))
            now = clock.now()
            step_vda_vehicles(bus, vehicles, now - last, now)
            oracle.check(now, [v.body for v in vehicles], None)
            last = now
    finally:
        await bus.stop()
        if report is not None:
            report.write_text(
                json.dumps(
                    {
                        "vehicles": count,
                        "collisions": [str(c) for c in oracle.collisions],
                        "distance_m": round(sum(v.body.odometer for v in vehicles), 1),
                        "simulated_s": round(now - clock.anchor, 1) if vehicles else 0.0,
                    }
                )
            )
    return oracle
