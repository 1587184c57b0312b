"""How a simulation's vehicles talk to the controller core.

- `DirectFleet`: the core's commands go straight to the kinematic vehicles and their events
  straight back: the fastest way, for long studies.
- `VdaFleet`: every vehicle is a `VdaSimVehicle` speaking VDA 5050 through a bus to the
  controller's `MasterControl`, as a real plant's vehicles do: the faithful way. The bus is the
  in-process one here; the MQTT shell uses the same vehicles and master over a real broker.
Both expose the kinematic `bodies` to the collision oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from fleet.core import Controller
from fleet.events import (
    ActionFinished,
    ActionKind,
    CancelDrive,
    Command,
    DriveCancelled,
    DriveNodes,
    Event,
    InitPosition,
    PauseVehicle,
    StartAction,
    StateReport,
    StopCharging,
)
from fleet.vda5050.gateway import Bus, VdaGateway
from fleet.vda5050.master import MasterControl
from fleet.vda5050.topics import VehicleKey
from maps import FacilityMap
from sim.bus import InProcessBus
from sim.vda_vehicle import VdaBehaviour, VdaSimVehicle
from sim.vehicle import SimVehicle, lane_geometry_for

MANUFACTURER = "fleetsim"


class SimFleet(Protocol):
    bodies: list[SimVehicle]

    def start(self, now: float) -> list[Event]: ...

    def step(self, dt: float, now: float) -> list[Event]: ...

    def apply(self, commands: list[Command], now: float) -> None: ...


def start_nodes(fmap: FacilityMap, count: int) -> list[str]:
    """Where vehicles start: parking spots, then chargers, then station queue bays, then (for
    fleets larger than the map has places for) any node that is not a station's."""
    candidates = [p.node for p in fmap.parking] + [c.node for c in fmap.chargers]
    bays = [n.id for n in fmap.nodes if n.id.endswith(".Q")]
    candidates += [n for n in bays if n not in candidates]
    if count > len(candidates):
        taken = set(candidates) | {s.node for s in fmap.stations}
        candidates += [n.id for n in fmap.nodes if n.id not in taken]
    if count > len(candidates):
        raise ValueError(f"map {fmap.name} has room to start {len(candidates)} vehicles, not {count}")
    return candidates[:count]


def initial_batteries(count: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(rng.uniform(0.5, 1.0)) for _ in range(count)]


class DirectFleet:
    def __init__(self, fmap: FacilityMap, controller: Controller, count: int, seed: int, report_s: float) -> None:
        self._controller = controller
        self._report_s = report_s
        self._next_report = 0.0
        vtype = fmap.vehicle_types[0]
        geometry = lane_geometry_for(fmap, vtype.max_speed)
        nodes = start_nodes(fmap, count)
        self.bodies = [
            SimVehicle(f"AGV-{k:02d}", vtype, fmap, geometry, node, battery)
            for k, (node, battery) in enumerate(zip(nodes, initial_batteries(count, seed), strict=True), start=1)
        ]
        self._by_id = {v.id: v for v in self.bodies}
        self._cancelling: set[str] = set()
        self._charge_stopped: list[str] = []  # charges stopped from outside, reported at the next step

    def start(self, now: float) -> list[Event]:
        for v in self.bodies:
            self._controller.add_vehicle(v.id, v.type.id, v.node, v.battery)
        self._next_report = now
        return []

    def step(self, dt: float, now: float) -> list[Event]:
        events: list[Event] = []
        for v in self.bodies:
            if v.busy:
                events += v.step(dt)
        events += [ActionFinished(vid, ActionKind.CHARGE) for vid in self._charge_stopped]
        self._charge_stopped = []
        for vid in sorted(self._cancelling):
            v = self._by_id[vid]
            if not v.moving and not v.path:
                self._cancelling.discard(vid)
                events.append(DriveCancelled(vid, v.node))
        if now >= self._next_report:
            self._next_report = now + self._report_s
            events += [StateReport(v.id, v.x, v.y, v.heading, v.battery) for v in self.bodies]
        return events

    def apply(self, commands: list[Command], now: float) -> None:
        for cmd in commands:
            if isinstance(cmd, DriveNodes):
                self._by_id[cmd.vehicle_id].drive(cmd.nodes)
            elif isinstance(cmd, StartAction):
                self._by_id[cmd.vehicle_id].start_action(cmd.action, cmd.place_id, cmd.until_battery)
            elif isinstance(cmd, StopCharging):
                body = self._by_id[cmd.vehicle_id]
                if body.acting:  # else the charge ended by itself and said so already
                    body.stop_action()
                    self._charge_stopped.append(cmd.vehicle_id)
            elif isinstance(cmd, CancelDrive):
                self._by_id[cmd.vehicle_id].cancel()
                self._cancelling.add(cmd.vehicle_id)
            elif isinstance(cmd, PauseVehicle):
                self._by_id[cmd.vehicle_id].paused = cmd.paused
            elif isinstance(cmd, InitPosition):
                self._by_id[cmd.vehicle_id].place_at(cmd.node)


class VdaFleet:
    def __init__(
        self,
        fmap: FacilityMap,
        controller: Controller,
        count: int,
        seed: int,
        master: MasterControl | None = None,
        bus: Bus | None = None,
        version: str = "2.0.0",
        behaviour: VdaBehaviour | None = None,
    ) -> None:
        self.bus: Bus = bus or InProcessBus()
        self.gateway = VdaGateway(controller, master or MasterControl(fmap), self.bus)
        self.master = self.gateway.master
        self.vehicles = simulated_vda_vehicles(fmap, count, seed, version, behaviour)
        self.bodies = [v.body for v in self.vehicles]
        self._now = 0.0

    def start(self, now: float) -> list[Event]:
        self._now = now
        self.gateway.start()
        for v in self.vehicles:
            self.connect_vehicle(v, now)
        return self.step(0.0, now)

    def connect_vehicle(self, v: VdaSimVehicle, now: float) -> None:
        connect_vda_vehicle(self.bus, v, lambda: self._now)

    def restart_vehicle(self, vehicle_id: str, now: float) -> bool:
        """Its software restarts (it loses its order); False if it is on a lane (it restarts
        only standing at a node)."""
        v = next(v for v in self.vehicles if v.key.serial_number == vehicle_id)
        if v.body.on_lane:
            return False
        v.restart(now)
        return True

    def drop_vehicle(self, v: VdaSimVehicle) -> None:
        """The vehicle's client dies without a goodbye: the bus publishes its last will."""
        self.bus.disconnect(v.key.serial_number, clean=False)

    def step(self, dt: float, now: float) -> list[Event]:
        self._now = now
        step_vda_vehicles(self.bus, self.vehicles, dt, now)
        self.gateway.flush()
        self.gateway.tick()  # instant actions unanswered in time, as on a real plant
        return self.gateway.take_events()

    def apply(self, commands: list[Command], now: float) -> None:
        self._now = now
        self.gateway.apply(commands)


def simulated_vda_vehicles(
    fmap: FacilityMap, count: int, seed: int, version: str = "2.0.0", behaviour: VdaBehaviour | None = None
) -> list[VdaSimVehicle]:
    """`count` simulated VDA 5050 vehicles of the map's first type, at their start places."""
    vtype = fmap.vehicle_types[0]
    geometry = lane_geometry_for(fmap, vtype.max_speed)
    return [
        VdaSimVehicle(
            VehicleKey(MANUFACTURER, f"AGV-{k:02d}"), fmap, vtype, geometry, node, battery, version, behaviour=behaviour
        )
        for k, (node, battery) in enumerate(
            zip(start_nodes(fmap, count), initial_batteries(count, seed), strict=True), start=1
        )
    ]


def connect_vda_vehicle(bus: Bus, v: VdaSimVehicle, now: Callable[[], float]) -> None:
    """The vehicle's own client on the bus, with its last will and ONLINE greeting."""
    cid = v.key.serial_number
    bus.connect(cid, will=v.last_will(now()), on_connect=lambda: [v.online_message(now())])

    def deliver(topic: str, payload: bytes) -> None:
        v.on_message(topic, payload, now())

    for topic in v.subscriptions():
        bus.subscribe(cid, topic, deliver)


def step_vda_vehicles(bus: Bus, vehicles: list[VdaSimVehicle], dt: float, now: float) -> None:
    """Move every vehicle `dt` seconds and publish what each has to say."""
    for v in vehicles:
        v.step(dt, now)
        for message in v.take_outbox():
            bus.publish(message, v.key.serial_number)
