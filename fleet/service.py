"""The controller as the outside world reaches it: the core plus durable storage.

Routes and shells call this; it calls the core and queues every change for storage (group
commit, `fleet.commits`). The API answers a state-changing request only after `committed()`:
an order is acknowledged only once it is in storage.

Concurrency contract: every method runs on the one asyncio loop (or thread) that also feeds the
core its vehicle events; none of them awaits, so each call is atomic with respect to the core.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Protocol

from pydantic import BaseModel

from fleet.alarms import AlarmBoard, RaisedAlarm
from fleet.cells import CellHandshake
from fleet.commits import CommitQueue, Write
from fleet.core import Controller
from fleet.eventlog import EventLog
from fleet.events import Alarm, Command, OrderChanged, VehicleChanged
from fleet.kpis import ShiftCounters, ShiftKpis, shift_kpis
from fleet.metrics import MetricSource, Sample, controller_samples, render
from fleet.model import OrderState, PendingVehicle, TaskKind, TransportOrder, Vehicle
from fleet.storage import OrderStore, StoredMap
from maps import FacilityMap, parse_map
from maps.schema import map_to_wire


def order_event(order: TransportOrder) -> dict[str, object]:
    return {
        "id": order.id,
        "state": order.state.value,
        "pickup": order.pickup,
        "dropoff": order.dropoff,
        "priority": order.priority,
        "vehicle_id": order.vehicle_id,
        "reason": order.reason,
    }


def vehicle_event(vehicle: Vehicle) -> dict[str, object]:
    task = vehicle.task
    return {
        "id": vehicle.id,
        "node": vehicle.node,
        "task": task.kind.value if task else None,
        "order_id": task.order_id if task else None,
        "paused": vehicle.paused,
        "available": vehicle.available,
        "online": vehicle.online,
    }


RECENT_CALLS = 10_000
AUDIT_UNKNOWN_PER_MIN = 60  # audit rows stored a minute for requests without a valid key
AUDIT_PRUNE_EVERY = 1_000  # audit rows between two prunings by age and size


class CallConflict(ValueError):
    """An idempotency key came back with a different request."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"Idempotency-Key '{key}' was used for a different call")


class CellControl(Protocol):
    """What the operator can do about a robot cell's transfer (the ROS gateway, or another
    transport's): retry it or give it up. Both raise KeyError for a station no cell serves and
    ValueError when no transfer there waits for the operator."""

    @property
    def cells(self) -> Mapping[str, CellHandshake]: ...

    def retry_transfer(self, station_id: str) -> None: ...

    def abort_transfer(self, station_id: str, by: str) -> None: ...


class VehicleAdmission(Protocol):
    """Vehicles that reported in but are not in the fleet, and admitting one (the VDA 5050
    gateway). `admit` raises KeyError for a serial number not pending."""

    @property
    def pending(self) -> Mapping[str, PendingVehicle]: ...

    def admit(self, serial_number: str, now: float) -> PendingVehicle: ...


class FleetService:
    def __init__(self, controller: Controller, store: OrderStore) -> None:
        """Bind the core to its storage and take back the orders open when it last stopped."""
        self.controller = controller
        self.store = store
        # Every write goes through it, in order (group commit); its probe tests a failed storage again.
        self.commits = CommitQueue(store, probe=self._storage_probe)
        # Calls committed lately, by idempotency key: a retry finds its first answer here without
        # a read (bounded: older ones are read from storage).
        self._recent_calls: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._calls_in_flight: dict[str, asyncio.Future[None]] = {}  # keys whose first call is committing
        self.metric_sources: list[MetricSource] = []  # shells add theirs (e.g. the VDA 5050 master)
        # Told when a new map is active (the VDA 5050 master, a simulated world), after the core.
        self.map_listeners: list[Callable[[FacilityMap], None]] = []
        self.events = EventLog()
        self.alarms = AlarmBoard()
        self._waits: dict[str, str] = {}
        self.shift = ShiftCounters()  # vehicle time by state, for the shift KPIs
        self.cells: CellControl | None = None  # robot cells, when the shell has any
        self.admission: VehicleAdmission | None = None  # vehicles waiting to be admitted, when a gateway has any
        self.vehicle_profiles: BaseModel | None = None  # the VDA 5050 vehicle profiles the shell was given
        # What is failing in the shells' loops right now (source -> why): readiness and health say it.
        self.problems: dict[str, str] = {}
        self.audit_days = float(os.environ.get("FLEET_AUDIT_DAYS", 90))  # audit rows kept this long
        self.audit_max_rows = int(os.environ.get("FLEET_AUDIT_MAX_ROWS", 1_000_000))  # and at most this many
        self._audit_rows = 0
        self.unauthenticated = 0  # changing requests without a valid key (for /metrics)
        self.unauthenticated_not_stored = 0  # of those, only counted (over the rate)
        self._unknown_minute, self._unknown_stored = -1, 0
        controller.continue_numbering_after(store.last_number())
        controller.restore(store.load_open())
        self._flush_changes()

    async def submit_order(
        self,
        pickup: str,
        dropoff: str,
        load_type: str | None = None,
        priority: int = 0,
        due_at: float | None = None,
        ready_at: float | None = None,
    ) -> TransportOrder:
        """Check, commit, apply: an order (raises `OrderRejected`) is committed before the core
        takes it, and refused with `StorageFailed`, leaving no trace, if the commit fails."""
        return await self._take(self.controller.check_order(pickup, dropoff, load_type, priority, due_at, ready_at))

    async def _take(self, order: TransportOrder, write: Write | None = None) -> TransportOrder:
        """Commit a checked order (with `write`, else alone), then hand it to the core."""
        await (self.commits.commit(write) if write is not None else self._commit_change(order))
        self.controller.accept(order)
        self._flush_changes()
        return order

    async def submit_call(
        self, key: str | None, station: str, need: str, load_type: str | None, priority: int
    ) -> tuple[TransportOrder, bool]:
        """A PLC call, idempotent by `key`: (order, created). A retry with the same key and the
        same request returns the first order; the same key with another request is refused.
        Check, commit, apply as `submit_order`: the call and its order are committed together
        before the core takes the order, so no key ever makes a second order, before or after a
        restart or a storage fault; a retry arriving while the first is committed waits for it."""
        request = json.dumps(
            {"station": station, "need": need, "load_type": load_type, "priority": priority}, sort_keys=True
        )
        if key is None:
            return await self._take(self.controller.check_call(station, need, load_type, priority)), True
        while (first := self._calls_in_flight.get(key)) is not None:
            await asyncio.shield(first)
        earlier = self._recent_calls.get(key) or self.store.call(key)
        if earlier is not None:
            if earlier[0] != request:
                raise CallConflict(key)
            order = self.order(earlier[1])
            assert order is not None, "a stored call always has its order"
            return order, False
        order = self.controller.check_call(station, need, load_type, priority)
        done = asyncio.get_running_loop().create_future()
        self._calls_in_flight[key] = done
        try:
            await self._take(order, self.store.call_write(key, request, station, order, self.controller.clock.now()))
            self._recent_calls[key] = (request, order.id)
        finally:
            del self._calls_in_flight[key]
            done.set_result(None)
        if len(self._recent_calls) > RECENT_CALLS:
            self._recent_calls.popitem(last=False)
        return order, True

    async def cancel_order(self, order_id: str, reason: str) -> TransportOrder:
        """Check, commit, apply, as `submit_order`: a cancellation storage refuses is not made."""
        await self._commit_change(self.controller.check_cancel(order_id, reason))
        order = self.controller.cancel_order(order_id, reason)
        self._flush_changes()
        return order

    async def set_priority(self, order_id: str, priority: int) -> TransportOrder:
        """Check, commit, apply, as `cancel_order`."""
        await self._commit_change(self.controller.check_priority(order_id, priority))
        order = self.controller.set_priority(order_id, priority)
        self._flush_changes()
        return order

    async def _commit_change(self, order: TransportOrder) -> None:
        """Commit an order as an operator's change will leave it, before the core makes the change.
        Should a vehicle change the order meanwhile (it finishes), the core refuses the change, and
        the vehicle's write, queued after this one, is what storage keeps."""
        await self.commits.commit(self.store.orders_write([order], self.controller.clock.now()))

    def _flush_changes(self) -> None:
        """Persist and log now the changes an API call made (the shell drains the rest later)."""
        self.record(self.controller.take_commands_of((OrderChanged, VehicleChanged, Alarm)))

    def record(self, commands: list[Command]) -> None:
        """Persist the order changes among the core's commands and log every change for the event
        stream (called by the shell that drains the commands)."""
        controller = self.controller
        self.shift.sample(controller.clock.now(), controller.vehicles.values(), controller.wait_causes().values())
        changed = [cmd.order for cmd in commands if isinstance(cmd, OrderChanged)]
        if changed:
            self.commits.later(self.store.orders_write(changed, self.controller.clock.now()))
        self._log(commands)

    async def committed(self) -> None:
        """Return once every change made so far is in storage (API answers wait for this)."""
        await self.commits.committed()

    def audit(self, who: str, key: str | None, method: str, path: str, status: int, known: bool) -> None:
        """Queue an audit row. Requests without a valid key (`known` false) are counted, and only
        `AUDIT_UNKNOWN_PER_MIN` of them a minute stored; every `AUDIT_PRUNE_EVERY` rows the log is
        cut to `audit_days` and `audit_max_rows`."""
        now = self.controller.clock.now()
        if not known:
            self.unauthenticated += 1
            minute = int(now // 60)
            if minute != self._unknown_minute:
                self._unknown_minute, self._unknown_stored = minute, 0
            if self._unknown_stored >= AUDIT_UNKNOWN_PER_MIN:
                self.unauthenticated_not_stored += 1
                return
            self._unknown_stored += 1
        self.commits.later(self.store.audit_write(now, who, key, method, path, status))
        self._audit_rows += 1
        if self._audit_rows % AUDIT_PRUNE_EVERY == 0:
            self.commits.later(self.store.audit_prune_write(now - self.audit_days * 86_400, self.audit_max_rows))

    def _storage_probe(self) -> Write:
        """An audit row that says the controller tested storage after a failed commit."""
        return self.store.audit_write(self.controller.clock.now(), "controller", None, "PROBE", "storage", 0)

    def pending_vehicles(self) -> list[PendingVehicle]:
        """Vehicles that reported in but are not in the fleet, oldest first."""
        return list(self.admission.pending.values()) if self.admission is not None else []

    async def admit_vehicle(self, serial_number: str, by: str) -> PendingVehicle:
        """Admit a pending vehicle (KeyError: none by that serial number): committed first, so it
        stays admitted across restarts, then it joins the fleet when it reports its state."""
        if self.admission is None or serial_number not in self.admission.pending:
            raise KeyError(serial_number)
        seen = self.admission.pending[serial_number]
        now = self.controller.clock.now()
        await self.commits.commit(self.store.admitted_write(serial_number, seen.manufacturer, now, by))
        return self.admission.admit(serial_number, now)

    def cell(self, station_id: str) -> CellHandshake | None:
        """The handshake of the cell serving the station, if one does."""
        return self.cells.cells.get(station_id) if self.cells is not None else None

    def transfer(self, station_id: str, retry: bool, by: str) -> CellHandshake:
        """The operator retries or aborts the failed transfer at a cell station (KeyError: no
        cell there; ValueError: nothing waits for the operator)."""
        if self.cells is None or station_id not in self.cells.cells:
            raise KeyError(station_id)
        if retry:
            self.cells.retry_transfer(station_id)
        else:
            self.cells.abort_transfer(station_id, by)
        return self.cells.cells[station_id]

    async def close(self) -> None:
        """On a clean stop: commit what is still queued (order changes from vehicle events),
        then close storage."""
        await self.commits.close()
        self.store.close()

    def _log(self, commands: list[Command]) -> None:
        for cmd in commands:
            if isinstance(cmd, OrderChanged):
                self.events.append("order", order_event(cmd.order))
            elif isinstance(cmd, VehicleChanged):
                self.events.append("vehicle", vehicle_event(cmd.vehicle))
            elif isinstance(cmd, Alarm):
                for changed in self.alarms.take(cmd, self.controller.clock.now()):
                    self.events.append("alarm" if isinstance(changed, RaisedAlarm) else "journal", asdict(changed))
        waits = {vid: why for vid, (_, why) in self.controller.waits().items()}
        if waits != self._waits:
            for vid in sorted(set(waits) | set(self._waits)):
                if waits.get(vid) != self._waits.get(vid):
                    self.events.append("wait", {"vehicle_id": vid, "reason": waits.get(vid)})
            self._waits = waits

    def order(self, order_id: str) -> TransportOrder | None:
        return self.controller.orders.get(order_id) or self.store.get(order_id)

    def orders(self) -> list[TransportOrder]:
        return list(self.controller.orders.values())

    def find_orders(
        self, states: set[OrderState] | None, station: str | None, vehicle_id: str | None, newest_first: bool
    ) -> list[TransportOrder]:
        found = [
            o
            for o in self.controller.orders.values()
            if (states is None or o.state in states)
            and (station is None or station in (o.pickup, o.dropoff))
            and (vehicle_id is None or o.vehicle_id == vehicle_id)
        ]
        return found[::-1] if newest_first else found

    def open_orders_at(self, station: str) -> list[TransportOrder]:
        """Open orders picking up or dropping off at `station`, by number."""
        return [o for o in self.controller.open_orders() if station in (o.pickup, o.dropoff)]

    def vehicles(self) -> list[Vehicle]:
        return list(self.controller.vehicles.values())

    def vehicle(self, vehicle_id: str) -> Vehicle | None:
        return self.controller.vehicles.get(vehicle_id)

    def pause_vehicle(self, vehicle_id: str, paused: bool) -> Vehicle:
        vehicle = self.controller.pause_vehicle(vehicle_id, paused)
        self._flush_changes()
        return vehicle

    def init_position(self, vehicle_id: str, node: str) -> Vehicle:
        vehicle = self.controller.init_position(vehicle_id, node)
        self._flush_changes()
        return vehicle

    def close_lane(self, lane_id: str, closed: bool) -> list[str]:
        self.controller.close_lane(lane_id, closed)
        self._flush_changes()
        return sorted(self.controller.closed_lanes)

    def close_zone(self, zone_id: str, closed: bool) -> list[str]:
        self.controller.close_zone(zone_id, closed)
        self._flush_changes()
        return sorted(self.controller.closed_zones)

    def set_in_service(self, vehicle_id: str, in_service: bool) -> Vehicle:
        vehicle = self.controller.set_in_service(vehicle_id, in_service)
        self._flush_changes()
        return vehicle

    def decide_load(self, vehicle_id: str, trust: str) -> Vehicle:
        vehicle = self.controller.decide_load(vehicle_id, trust)
        self._flush_changes()
        return vehicle

    def send_to(self, vehicle_id: str, kind: TaskKind, place_id: str | None) -> Vehicle:
        vehicle = self.controller.send_to(vehicle_id, kind, place_id)
        self._flush_changes()
        return vehicle

    def set_max_working(self, limit: int | None) -> None:
        self.controller.set_max_working(limit)
        self._flush_changes()

    def pause_fleet(self, paused: bool) -> bool:
        self.controller.pause_fleet(paused)
        self._flush_changes()
        return self.controller.fleet_paused

    def upload_map(self, data: dict[str, object], by: str) -> tuple[StoredMap, list[str]]:
        """Validate a map file's data (MapValidationError lists every problem), keep it, and
        activate it: at once when the fleet is quiet, else at the next start of the controller
        (it is stored as the active map). The stored map, and why it is not active yet (empty:
        it is active now)."""
        fmap = parse_map(data, source="uploaded map")
        now = self.controller.clock.now()
        map_id = self.store.save_map(fmap.name, map_to_wire(fmap), by, now)
        return self.activate_map(map_id)

    def activate_map(self, map_id: int) -> tuple[StoredMap, list[str]]:
        """Make a stored map the active one (KeyError if unknown): see `upload_map`."""
        stored = self.store.stored_map(map_id)
        if stored is None:
            raise KeyError(map_id)
        fmap = parse_map(stored.body, source=f"stored map {map_id}")
        self.store.activate_map(map_id, self.controller.clock.now())
        blockers = self.controller.map_change_blockers(fmap)
        if not blockers:
            self.controller.replace_map(fmap)
            for listener in self.map_listeners:
                listener(fmap)
            self._flush_changes()
        stored = self.store.stored_map(map_id)
        assert stored is not None
        return stored, blockers

    def kpis(self, window_s: float) -> ShiftKpis:
        """KPIs of the last `window_s` seconds (orders finished, lead time, utilisation, waits)."""
        return shift_kpis(self.controller.orders.values(), self.shift, self.controller.clock.now(), window_s)

    def failures(self) -> list[str]:
        """What fails now: storage that does not answer or does not commit, dispatching or the
        deadlock checks failing with no order or vehicle at fault, a shell's loop that fails."""
        problems = []
        if (error := self.store.ping()) is not None:
            problems.append(f"storage does not answer: {error}")
        if (error := self.commits.failing) is not None:
            problems.append(f"storage does not commit: {error}; new work is refused until it does")
        problems += [p for p in (self.controller.dispatch_problem, self.controller.unjam_problem) if p is not None]
        return problems + [f"{source}: {why}" for source, why in sorted(self.problems.items())]

    def readiness(self) -> list[str]:
        """Why the controller should not get traffic (empty: ready): its failures, or the start-up hold."""
        problems = self.failures()
        if self.controller.holding:
            problems.append("starting: vehicles are reporting where they stand; no path released yet")
        return problems

    def health_problems(self) -> list[str]:
        """Failures, and what degrades service without stopping it (quarantined orders)."""
        held = self.controller.quarantined
        return self.failures() + [f"order {oid} quarantined: {why}" for oid, why in sorted(held.items())]

    def metrics_text(self) -> str:
        samples = controller_samples(self.controller) + self._samples()
        for source in self.metric_sources:
            samples += list(source())
        return render(samples)

    def _samples(self) -> list[Sample]:
        c = self.commits
        return [
            Sample("fleet_storage_commits_total", "counter", "Batches committed.", c.batches),
            Sample(
                "fleet_storage_commit_failures_total", "counter", "Batches that failed (and were retried).", c.failures
            ),
            Sample(
                "fleet_storage_refused_total",
                "counter",
                "New orders and calls refused: their commit failed.",
                c.refused,
            ),
            Sample("fleet_storage_failing", "gauge", "1 while storage does not commit.", int(c.failing is not None)),
            Sample(
                "fleet_storage_poisoned_total", "counter", "Writes dropped: storage refuses their data.", c.poisoned
            ),
            Sample(
                "fleet_orders_quarantined",
                "gauge",
                "Open orders the dispatcher fails on.",
                len(self.controller.quarantined),
            ),
            Sample(
                "fleet_api_unauthenticated_total",
                "counter",
                "Changing requests without a valid key.",
                self.unauthenticated,
            ),
            Sample(
                "fleet_api_unauthenticated_not_stored_total",
                "counter",
                "Of those, over the rate: counted, not stored in the audit log.",
                self.unauthenticated_not_stored,
            ),
        ]

    def wait_reason(self, vehicle_id: str) -> str | None:
        return self.controller.wait_reason(vehicle_id)

    def acknowledge_alarm(self, alarm_id: int, by: str) -> RaisedAlarm:
        """KeyError if the alarm is unknown."""
        alarm = self.alarms.acknowledge(alarm_id, by, self.controller.clock.now())
        self.events.append("alarm", asdict(alarm))
        return alarm

    def shelve_alarm(self, alarm_id: int, by: str, minutes: float | None) -> RaisedAlarm:
        """Shelve an alarm for `minutes` (None: unshelve it); KeyError if the alarm is unknown."""
        until = None if minutes is None else self.controller.clock.now() + 60 * minutes
        alarm = self.alarms.shelve(alarm_id, by, until)
        self.events.append("alarm", asdict(alarm))
        return alarm

    def path_ahead(self, vehicle_id: str) -> tuple[list[str], list[str]]:
        return self.controller.path_ahead(vehicle_id)
