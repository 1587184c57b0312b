"""The controller's side of VDA 5050 over a bus: vehicle messages in, through the master
control, become core events; core commands, through the master, become messages out.

The simulation (in-process bus) and the server shell (MQTT) both use it; only the bus differs.
Concurrency contract: one loop. Bus handlers only parse and queue events (`take_events`); the
shell feeds them to the core and hands the core's commands back with `apply`, so the core has
a single writer and no handler calls into it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from fleet.core import Controller
from fleet.events import Command, DriveNodes, Event, VehicleCommand
from fleet.model import PendingVehicle
from fleet.vda5050.master import MasterControl, Outgoing, VehicleAppeared
from fleet.vda5050.topics import SNAPSHOT_TOPICS

CONTROLLER_CLIENT = "controller"
log = logging.getLogger(__name__)


class Bus(Protocol):
    """A message transport: `sim.bus.InProcessBus` or `fleet.vda5050.mqtt.MqttBus`."""

    def connect(
        self, client_id: str, will: Outgoing | None = None, on_connect: Callable[[], list[Outgoing]] | None = None
    ) -> None: ...

    def disconnect(self, client_id: str, clean: bool = True) -> None: ...

    def subscribe(
        self, client_id: str, pattern: str, handler: Callable[[str, bytes], None], snapshot: bool = False
    ) -> None: ...

    def publish(self, message: Outgoing, client_id: str = CONTROLLER_CLIENT) -> None: ...

    def pump(self) -> None: ...


class VdaGateway:
    def __init__(self, controller: Controller, master: MasterControl, bus: Bus) -> None:
        self.controller = controller
        self.master = master
        self.bus = bus
        self._default_type = controller.map.vehicle_types[0].id
        self._events: list[Event] = []
        self.on_events: Callable[[], None] | None = None  # told when events wait in `take_events`

    def start(self) -> None:
        """Register the configured vehicles and subscribe to every vehicle's topics."""
        for serial, settings in self.master.config.vehicles.items():
            self.controller.register_vehicle(serial, settings.type_id or self._default_type)
        self.bus.connect(CONTROLLER_CLIENT)
        for pattern in self.master.config.layout.subscriptions():
            snapshot = pattern.rsplit("/", 1)[-1] in SNAPSHOT_TOPICS
            self.bus.subscribe(CONTROLLER_CLIENT, pattern, self._on_message, snapshot=snapshot)

    @property
    def pending(self) -> Mapping[str, PendingVehicle]:
        """Vehicles that reported in but are not in the fleet (see `MasterControl.pending`)."""
        return self.master.pending

    def admit(self, serial_number: str, now: float) -> PendingVehicle:
        """Admit a pending vehicle: it is asked for its state and placed when it reports it."""
        seen = self.master.admit(serial_number, now)
        self.flush()
        return seen

    def published(self, client_id: str, message: Outgoing) -> None:
        """For buses that send later than asked (MQTT): a message of ours has left just now."""
        if client_id == CONTROLLER_CLIENT:
            self.master.published(message.topic, self.controller.clock.now())

    def take_events(self) -> list[Event]:
        """Core events from the messages that came in since the last call."""
        events, self._events = self._events, []
        return events

    def tick(self) -> None:
        """Instant actions the vehicles have not answered in time become core events."""
        placed = self.controller.vehicles
        events = [e for e in self.master.tick(self.controller.clock.now()) if getattr(e, "vehicle_id", None) in placed]
        if events:
            self._events.extend(events)
            if self.on_events is not None:
                self.on_events()

    def apply(self, commands: list[Command]) -> list[Command]:
        """Send what the core decided to the vehicles it concerns (unknown vehicles' commands
        are dropped by the master); nothing is left for another adapter."""
        now = self.controller.clock.now()
        for cmd in commands:
            if isinstance(cmd, DriveNodes):
                _, horizon = self.controller.traffic.remaining(cmd.vehicle_id)
                self.master.on_command(cmd, horizon, now)
            elif isinstance(cmd, VehicleCommand):
                self.master.on_command(cmd, [], now)
        self.flush()
        return []

    def flush(self) -> None:
        """Deliver until quiet: what is queued on the bus, then what the master says in answer."""
        while True:
            self.bus.pump()
            outgoing = self.master.take_outbox()
            if not outgoing:
                return
            for message in outgoing:
                self.bus.publish(message, CONTROLLER_CLIENT)

    def _on_message(self, topic: str, payload: bytes) -> None:
        placed = self.controller.vehicles
        for item in self.master.on_message(topic, payload, self.controller.clock.now()):
            if isinstance(item, VehicleAppeared):
                try:
                    # Placing a vehicle is no decision of the core's: it has no commands to return.
                    self.controller.add_vehicle(
                        item.vehicle_id, item.type_id or self._default_type, item.node, item.battery, item.ahead
                    )
                except ValueError as exc:
                    log.warning("vehicle %s not placed, tried again on its next state: %s", item.vehicle_id, exc)
                    self.master.forget(item.vehicle_id)
            elif (vid := getattr(item, "vehicle_id", None)) is None or (vid in placed and placed[vid].placed):
                self._events.append(item)  # events of a vehicle not on the map (not placed) are dropped
        if self._events and self.on_events is not None:
            self.on_events()
