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
    CancelDrive,
    Command,
    DriveCancelled,
    DriveNodes,
    Event,
    InitPosition,
    PauseVehicle,
    StartAction,
    StateReport,
)
from fleet.vda5050.master import MasterControl, Outgoing, VehicleAppeared
from fleet.vda5050.topics import VehicleKey
from maps import FacilityMap
from sim.bus import InProcessBus
from sim.vda_vehicle import VdaSimVehicle
from sim.vehicle import SimVehicle, lane_geometry_for

MANUFACTURER = "fleetsim"


class Bus(Protocol):
    """What `VdaFleet` needs of a transport: `sim.bus.InProcessBus` or `fleet.vda5050.mqtt.MqttBus`."""

    def connect(
        self, client_id: str, will: Outgoing | None = None, on_connect: Callable[[], list[Outgoing]] | None = None
    ) -> None: ...

    def disconnect(self, client_id: str, clean: bool = True) -> None: ...

    def subscribe(self, client_id: str, pattern: str, handler: Callable[[str, bytes], None]) -> None: ...

    def publish(self, message: Outgoing, client_id: str = "controller") -> None: ...

    def pump(self) -> None: ...


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
    ) -> None:
        self._controller = controller
        self.master = master or MasterControl(fmap)
        self.bus: Bus = bus or InProcessBus()
        vtype = fmap.vehicle_types[0]
        self._type_id = vtype.id
        geometry = lane_geometry_for(fmap, vtype.max_speed)
        nodes = start_nodes(fmap, count)
        self.vehicles = [
            VdaSimVehicle(VehicleKey(MANUFACTURER, f"AGV-{k:02d}"), fmap, vtype, geometry, node, battery, version)
            for k, (node, battery) in enumerate(zip(nodes, initial_batteries(count, seed), strict=True), start=1)
        ]
        self.bodies = [v.body for v in self.vehicles]
        self._events: list[Event] = []
        self._now = 0.0

    def start(self, now: float) -> list[Event]:
        self._now = now
        for serial, settings in self.master.config.vehicles.items():
            self._controller.register_vehicle(serial, settings.type_id or self._type_id)
        self.bus.connect("controller")
        for pattern in self.master.config.layout.subscriptions():
            self.bus.subscribe("controller", pattern, self._to_controller)
        for v in self.vehicles:
            self.connect_vehicle(v, now)
        return self.step(0.0, now)

    def connect_vehicle(self, v: VdaSimVehicle, now: float) -> None:
        cid = v.key.serial_number
        self.bus.connect(cid, will=v.last_will(now), on_connect=lambda: [v.online_message(self._now)])
        for topic in v.subscriptions():
            self.bus.subscribe(cid, topic, self._deliver_to(v))

    def _deliver_to(self, v: VdaSimVehicle) -> Callable[[str, bytes], None]:
        def deliver(topic: str, payload: bytes) -> None:
            v.on_message(topic, payload, self._now)

        return deliver

    def drop_vehicle(self, v: VdaSimVehicle) -> None:
        """The vehicle's client dies without a goodbye: the bus publishes its last will."""
        self.bus.disconnect(v.key.serial_number, clean=False)

    def step(self, dt: float, now: float) -> list[Event]:
        self._now = now
        for v in self.vehicles:
            v.step(dt, now)
            for message in v.take_outbox():
                self.bus.publish(message, v.key.serial_number)
        self._flush()
        events, self._events = self._events, []
        return events

    def apply(self, commands: list[Command], now: float) -> None:
        self._now = now
        for cmd in commands:
            if isinstance(cmd, DriveNodes):
                _, horizon = self._controller.traffic.remaining(cmd.vehicle_id)
                self.master.on_command(cmd, horizon, now)
            elif isinstance(cmd, StartAction | CancelDrive | PauseVehicle | InitPosition):
                self.master.on_command(cmd, [], now)
        self._flush()

    def _flush(self) -> None:
        """Deliver until quiet: what is queued on the bus, then what the master says in answer."""
        while True:
            self.bus.pump()
            outgoing = self.master.take_outbox()
            if not outgoing:
                return
            for message in outgoing:
                self.bus.publish(message, "controller")

    def _to_controller(self, topic: str, payload: bytes) -> None:
        for item in self.master.on_message(topic, payload, self._now):
            if isinstance(item, VehicleAppeared):
                self._controller.add_vehicle(item.vehicle_id, item.type_id or self._type_id, item.node, item.battery)
            else:
                self._events.append(item)
