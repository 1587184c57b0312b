"""The controller core: one state machine, events in, commands out.

The core does no I/O and reads time only from the injected clock. Shells (the simulator's runner,
the server) feed it events and carry out the commands it leaves in its outbox.

Concurrency contract: a `Controller` has a single writer. Call it from one thread or one asyncio
loop only; adapters post events to that writer and never call in while holding their own locks.

`Controller` is the facade: `handle(event)`, the operator's verbs on vehicles, the fleet and
the map, on top of the roles it is built from (`fleet/core/record.py` up to `intake.py`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from fleet import unjam
from fleet.core.config import RETIRE_EVERY_S, OrderRejected
from fleet.core.intake import Intake
from fleet.dispatcher import working
from fleet.events import (
    AbilitiesReported,
    ActionFinished,
    BaseRequested,
    Command,
    CommandRefused,
    ConnectionChanged,
    DriveCancelled,
    DriveRejected,
    Event,
    InitPosition,
    LoadReported,
    NodeReached,
    OrderLost,
    StateReport,
    Tick,
    TransferProblem,
    VehicleMoved,
    VehicleStatus,
)
from fleet.model import OrderState, Task, TaskKind, TaskPhase, Vehicle
from maps import FacilityMap


class Controller(Intake):
    """Orders, vehicles, dispatcher and traffic for one facility map."""

    def map_change_blockers(self, fmap: FacilityMap) -> list[str]:
        """Why `fmap` cannot replace the active map now (empty: it can). A map changes only while
        no vehicle moves or works on an order, and only to one that has every node a vehicle
        stands on, every vehicle type in use and every station of an open order."""
        reasons = []
        for v in self.vehicles.values():
            if not v.placed:
                continue
            ahead, _ = self.traffic.remaining(v.id)
            if v.task is not None and not (v.task.kind is TaskKind.PARK and v.task.phase is TaskPhase.ACTION):
                what = f"order {v.task.order_id}" if v.task.order_id else f"its way to {v.task.kind.value}"
                reasons.append(f"{v.id} is busy with {what}")
            elif ahead or v.stopping:
                reasons.append(f"{v.id} is moving")
            if v.node not in fmap.node_by_id:
                reasons.append(f"{v.id} stands on node {v.node}, which the new map lacks")
            if v.type_id not in fmap.vehicle_type_by_id:
                reasons.append(f"{v.id} is of vehicle type {v.type_id}, which the new map lacks")
        for order in self.open_orders():
            if order.state not in (OrderState.ACCEPTED, OrderState.ASSIGNED):
                reasons.append(f"order {order.id} is under way ({order.state.value})")
            for station in (order.pickup, order.dropoff):
                if station not in fmap.station_by_id:
                    reasons.append(f"order {order.id} needs station {station}, which the new map lacks")
        return reasons

    def replace_map(self, fmap: FacilityMap) -> None:
        """Activate `fmap` now (`map_change_blockers` must be empty, else ValueError). Vehicles
        stay where they stand; orders not yet started go back to the dispatcher; lanes and zones
        closed that the new map still has stay closed."""
        reasons = self.map_change_blockers(fmap)
        if reasons:
            raise ValueError("; ".join(reasons))
        closed_lanes, closed_zones = set(self.closed_lanes), set(self.closed_zones)
        self._use_map(fmap)
        self._planned_at.clear()
        self._turn_waits.clear()
        self._known_cycles.clear()
        for v in list(self.vehicles.values()):
            if v.placed:
                self.traffic.place(v.id, v.node)
                pos = fmap.node_by_id[v.node]
                self._put_vehicle(replace(v, x=pos.x, y=pos.y, task=self._parked_at(v.node), stops=()))
        for order in self.open_orders():
            if order.state is OrderState.ASSIGNED:
                self._move(order, OrderState.ACCEPTED, reason=f"map {fmap.name} activated")
        self.closed_lanes = {lane for lane in closed_lanes if lane in fmap.lane_by_id}
        self.closed_zones = {zone for zone in closed_zones if zone in self._zone_lanes}
        self._closed_now = set()
        self._apply_closures()
        self._dispatch_wanted = True
        self._alarm("map-activated", f"map {fmap.name} is active")

    def register_vehicle(self, vehicle_id: str, type_id: str) -> Vehicle:
        """A vehicle known by configuration before it reports: listed, offline, not on the map,
        given no work until `add_vehicle` places it."""
        if vehicle_id in self.vehicles:
            raise ValueError(f"vehicle {vehicle_id} already registered")
        if type_id not in self.map.vehicle_type_by_id:
            raise ValueError(f"vehicle {vehicle_id}: unknown vehicle type '{type_id}'")
        vehicle = Vehicle(vehicle_id, type_id, "", 0.0, online=False, placed=False, connection="not reported")
        self._put_vehicle(vehicle)
        return vehicle

    def add_vehicle(
        self, vehicle_id: str, type_id: str, node: str, battery: float = 1.0, ahead: tuple[str, ...] = ()
    ) -> Vehicle:
        """A vehicle joins the fleet standing at `node` (a pre-registered one is placed there).
        `ahead`: nodes an earlier run of the controller released to it, which it still drives;
        they stay its own until it passes them, and its next route starts at their end."""
        known = self.vehicles.get(vehicle_id)
        if known is not None and known.placed:
            raise ValueError(f"vehicle {vehicle_id} already registered")
        if known is not None:
            type_id = known.type_id
        if type_id not in self.map.vehicle_type_by_id:
            raise ValueError(f"vehicle {vehicle_id}: unknown vehicle type '{type_id}'")
        pos = self.map.node_by_id[node]
        self.traffic.place(vehicle_id, node, ahead)
        vehicle = Vehicle(vehicle_id, type_id, node, battery, pos.x, pos.y, task=self._parked_at(node))
        if known is not None:
            vehicle = replace(vehicle, paused=known.paused, in_service=known.in_service)
        self._put_vehicle(vehicle)
        self._sync_pause(vehicle_id)
        self._dispatch_wanted = True
        if vehicle_id in self._loaded_awaiting:
            self._resume_delivery(vehicle_id)
        return self.vehicles[vehicle_id]

    def pause_vehicle(self, vehicle_id: str, paused: bool = True) -> Vehicle:
        """Operator pause (or resume) of one vehicle: it holds where it is and gets no new work."""
        self._put_vehicle(replace(self._vehicle(vehicle_id), paused=paused))
        self._sync_pause(vehicle_id)
        self._dispatch_wanted = True
        return self.vehicles[vehicle_id]

    def init_position(self, vehicle_id: str, node: str) -> Vehicle:
        """Operator: the vehicle (standing, without a task other than parking) is really at `node`."""
        v = self._vehicle(vehicle_id)
        if node not in self.map.node_by_id:
            raise OrderRejected("node", f"unknown node '{node}'")
        if not v.placed:
            raise OrderRejected("vehicle_id", f"{vehicle_id} has not reported yet; it places itself when it does")
        if v.task is not None and v.task.kind is not TaskKind.PARK:
            raise OrderRejected("vehicle_id", f"{vehicle_id} is busy ({v.task.kind.value}); it must be idle")
        try:
            self.traffic.relocate(vehicle_id, node)
        except ValueError as exc:
            raise OrderRejected("node", str(exc)) from None
        pos = self.map.node_by_id[node]
        self._put_vehicle(replace(v, node=node, x=pos.x, y=pos.y, task=self._parked_at(node)))
        self._outbox.append(InitPosition(vehicle_id, node))
        self._dispatch_wanted = True
        return self.vehicles[vehicle_id]

    def send_to(self, vehicle_id: str, kind: TaskKind, place_id: str | None = None) -> Vehicle:
        """Operator: send an idle vehicle to a parking spot or charger (the nearest free one when
        `place_id` is None)."""
        v = self._vehicle(vehicle_id)
        if kind not in (TaskKind.PARK, TaskKind.CHARGE):
            raise OrderRejected("kind", "must be park or charge")
        if not v.placed or not v.idle:
            raise OrderRejected("vehicle_id", f"{vehicle_id} is busy or not on the map")
        places = (
            {p.id: p.node for p in self.map.parking}
            if kind is TaskKind.PARK
            else {c.id: c.node for c in self.map.chargers}
        )
        taken = {o.task.place_id for o in self.vehicles.values() if o.task and o.id != vehicle_id}
        if place_id is not None:
            if place_id not in places:
                raise OrderRejected("place_id", f"unknown {kind.value} place '{place_id}'")
            if place_id in taken:
                raise OrderRejected("place_id", f"'{place_id}' is taken")
            chosen = place_id
        else:
            start = self.traffic.released_end(vehicle_id)
            free = sorted((self.graph.time(start, node), pid) for pid, node in places.items() if pid not in taken)
            if not free or not math.isfinite(free[0][0]):
                raise OrderRejected("place_id", f"no free {kind.value} place can be reached")
            chosen = free[0][1]
        self._put_vehicle(replace(v, task=Task(kind, places[chosen], place_id=chosen)))
        self._drive_to(vehicle_id, places[chosen])
        return self.vehicles[vehicle_id]

    def pause_fleet(self, paused: bool = True) -> None:
        """Emergency pause of every vehicle (and of vehicles that join while it lasts), or its end.
        Vehicles paused one by one stay paused when the fleet pause ends."""
        self.fleet_paused = paused
        self._alarm("fleet-paused" if paused else "fleet-resumed", "emergency pause" if paused else "pause lifted")
        for vid in self.vehicles:
            self._sync_pause(vid)
        self._dispatch_wanted = True

    def set_max_working(self, limit: int | None) -> None:
        """Admission control at run time: at most `limit` vehicles work on orders at once (None:
        all may). Lowering it takes no work away: vehicles with orders finish them, and no idle
        one is given more until fewer than `limit` work."""
        if limit is not None and limit < 1:
            raise OrderRejected("max_working_vehicles", f"must be at least 1, or none for no limit, not {limit}")
        # In the controller's settings too, so that a map activated later keeps it.
        self.config = replace(self.config, dispatch=replace(self.config.dispatch, max_working_vehicles=limit))
        self.dispatcher.config = replace(self.dispatcher.config, max_working_vehicles=limit)
        self._alarm(
            "admission-changed", f"at most {limit} vehicles work at once" if limit else "every vehicle may work"
        )
        self._dispatch_wanted = True

    @property
    def max_working(self) -> int | None:
        """The admission limit in force (None: every vehicle may work)."""
        return self.dispatcher.config.max_working_vehicles

    def working_vehicles(self) -> int:
        """How many vehicles work on orders now (what `set_max_working` limits)."""
        return sum(working(v) for v in self.vehicles.values())

    def handle(self, event: Event) -> list[Command]:
        """Apply one event; return the commands it produced (and any queued before). An event of a
        vehicle that the core trips on takes that vehicle out of service with an alarm naming it
        and the error (the operator puts it back); the rest of the fleet goes on."""
        try:
            self._apply(event)
        except Exception as exc:
            vehicle_id = getattr(event, "vehicle_id", None)
            if vehicle_id not in self.vehicles:
                raise
            self._quarantine_vehicle(vehicle_id, type(event).__name__, exc)
        self._wake_turn_waiters()
        return self.take_commands()

    def _apply(self, event: Event) -> None:
        match event:
            case NodeReached():
                self._on_node_reached(event)
            case ActionFinished():
                self._on_action_finished(event)
            case StateReport():
                self._on_state(event)
            case DriveRejected():
                self._on_drive_rejected(event)
            case ConnectionChanged():
                self._on_connection(event)
            case DriveCancelled():
                self._on_drive_cancelled(event)
            case BaseRequested():
                self._release(event.vehicle_id)
            case VehicleMoved():
                self._on_moved(event)
            case CommandRefused():
                self._on_command_refused(event)
            case OrderLost():
                self._on_order_lost(event)
            case AbilitiesReported():
                self._on_abilities(event)
            case VehicleStatus():
                self._on_status(event)
            case LoadReported():
                self._on_load(event)
            case TransferProblem():
                self._on_transfer_problem(event)
            case Tick():
                self._on_tick()

    def _on_tick(self) -> None:
        now = self.clock.now()
        if self._hold_until is not None and now >= self._hold_until:
            self._hold_until = None
            for vehicle_id, v in self.vehicles.items():
                if v.placed:
                    self._release(vehicle_id)
        self._return_orders_of_offline(now)
        self._pick_ready_loads(now)
        if self._solving is not None and self._solving.future.done():
            self._dispatch(self._collect_solve)
        elif self._solving is not None and self._pool is not None and self._pool.overdue(self._solving.future):
            self._dispatch(self._abandon_solve)
        since = now - self._last_dispatch
        if since >= self.config.redispatch_s or (self._dispatch_wanted and since >= self.config.dispatch.interval_s):
            self._dispatch(self._dispatch_now)
        if now - self._last_deadlock_check >= self.config.deadlock_check_s:
            self._last_deadlock_check = now
            self._unjam()
        if now - self._last_retired >= RETIRE_EVERY_S:
            self._last_retired = now
            self._retire_ended(now)

    def _unjam(self) -> None:
        """The deadlock checks, contained: one that raises is reported (an alarm, `unjam_problem`
        for readiness) and tried again at the next check; the tick goes on."""
        try:
            unjam.check_deadlocks(self)
            unjam.clear_idle_blockers(self)
            unjam.replan_off_plan(self)
        except Exception as exc:
            problem = f"the deadlock checks fail: {type(exc).__name__}: {exc}"[:300]
            if problem != self.unjam_problem:
                self._alarm("unjam-failed", f"{problem}; tried again in {self.config.deadlock_check_s:.0f} s")
            self.unjam_problem = problem
        else:
            if self.unjam_problem is not None:
                self._alarm("unjam-recovered", "the deadlock checks work again")
            self.unjam_problem = None
