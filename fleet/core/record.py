"""The core's record: the state every role of the controller shares, and the only code that
changes orders and vehicles and emits OrderChanged, VehicleChanged and Alarm.

Also what every role may need to do to a vehicle that fails: take it out of service (handing
back what it has not loaded), or quarantine it when the core trips on it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from fleet.clock import Clock
from fleet.core.config import ControllerConfig, ControllerStats, OrderRejected, Solving, no_stopwatch
from fleet.dispatcher import Dispatcher
from fleet.events import Alarm, Command, OrderChanged, VehicleChanged
from fleet.model import Decision, OrderState, Task, TaskKind, TaskPhase, TransportOrder, Vehicle
from fleet.routing import TimedRouter
from fleet.solving import Solver
from fleet.traffic import TrafficManager
from maps import FacilityMap, Station
from planners.assignment import Stop, StopKind
from planners.graph import compile_map


class Record:
    """The record every role works on: site (map, graph), orders, vehicles, outbox, and the
    annotations of dispatching, traffic and execution. Roles build on it (`Scheduling`,
    `Execution`, `VehicleReports`, `Dispatching`, `Intake`, and the `Controller` facade), each
    calling only roles below it."""

    def __init__(
        self,
        fmap: FacilityMap,
        clock: Clock,
        config: ControllerConfig | None = None,
        stopwatch: Callable[[], float] | None = None,
        solver_pool: Solver | None = None,
    ) -> None:
        """`stopwatch` measures compute time for the metrics (a shell passes `time.perf_counter`);
        without one nothing is timed, so simulations stay reproducible. With `solver_pool` the
        dispatcher's OR-Tools solves run in its process while the controller goes on (a server);
        without, in the call (the simulator: reproducible, and its clock waits for them)."""
        self.clock = clock
        self._pool = solver_pool
        self._solving: Solving | None = None
        self._graph_version = 0
        self._stopwatch = stopwatch or no_stopwatch
        self.config = config or ControllerConfig()
        self._planned_at: dict[str, float] = {}  # vehicle -> when its route was last set
        self._turn_waits: dict[tuple[str, str], float] = {}  # (waiting, for whom) -> since when
        self.orders: dict[str, TransportOrder] = {}
        self.vehicles: dict[str, Vehicle] = {}
        self.alarms: deque[Alarm] = deque(maxlen=1000)  # the newest raised, for simulations and tests
        self.stats = ControllerStats()
        self._outbox: list[Command] = []
        self._order_seq = 0
        self._dispatch_wanted = False
        self._last_dispatch = -math.inf
        self._last_deadlock_check = -math.inf
        self._last_retired = -math.inf
        self._known_cycles: set[frozenset[str]] = set()
        self._unservable: set[str] = set()  # open orders no vehicle in the fleet can carry (stated once)
        self.quarantined: dict[str, str] = {}  # open orders the dispatcher fails on -> why (held out)
        self.dispatch_problem: str | None = None  # why dispatching fails with no order at fault
        self.unjam_problem: str | None = None  # why the deadlock checks fail (they are tried again)
        self._quarantining: set[str] = set()  # vehicles being taken out of service for an error
        self._held_by_cell: dict[str, str] = {}  # vehicle -> why its cell transfer holds it (for the operator)
        self._awaiting_load: dict[str, str] = {}  # vehicle -> order whose load is not ready at the pick-up yet
        self._stopping_charge: set[str] = set()  # opportunity charges stopped for an order, until they end
        self.fleet_paused = False
        self._pause_sent: dict[str, bool] = {}
        self.closed_lanes: set[str] = set()
        self.blocked_by_closure: set[str] = set()  # vehicles whose goal closures cut off (one alarm each)
        self.closed_zones: set[str] = set()
        self._closed_now: set[str] = set()  # lanes closed by themselves or by a closed zone
        self._loaded_awaiting: dict[str, list[str]] = {}  # vehicle -> restored orders it carries
        self._hold_until: float | None = None  # no path released before (vehicles still reporting in)
        self._use_map(fmap)

    def _use_map(self, fmap: FacilityMap) -> None:
        """Everything the controller derives from the facility map (at start, and when a new map
        is activated)."""
        self.map = fmap
        self.graph = compile_map(fmap)
        self.full_graph = self.graph  # every lane open: what is physically reachable
        self._station_nodes = frozenset(s.node for s in fmap.stations)
        self._service_at = {s.node: s.service_time_s for s in fmap.stations}
        self._no_through = fmap.no_through_nodes
        self.traffic = TrafficManager(fmap, self.config.lookahead_nodes)
        self.router = TimedRouter(fmap, self.config.clear_s)
        self.dispatcher = Dispatcher(fmap, self.graph, self.config.dispatch)
        self._graph_version += 1
        self._zone_lanes = {z.id: fmap.lanes_crossing(z) for z in fmap.zones}

    def _vehicle(self, vehicle_id: str) -> Vehicle:
        if vehicle_id not in self.vehicles:
            raise OrderRejected("vehicle_id", f"unknown vehicle '{vehicle_id}'")
        return self.vehicles[vehicle_id]

    def _station(self, order: TransportOrder, kind: StopKind) -> Station:
        """Where the order's pick-up or drop-off is."""
        return self.map.station_by_id[order.pickup if kind is StopKind.PICKUP else order.dropoff]

    def _parked_at(self, node: str) -> Task | None:
        """The task of a vehicle standing on `node`: parked there, if `node` is a parking spot."""
        spot = next((p for p in self.map.parking if p.node == node), None)
        return Task(TaskKind.PARK, node, TaskPhase.ACTION, place_id=spot.id) if spot else None

    def _retire_ended(self, now: float) -> None:
        """Orders that ended more than `keep_ended_s` ago leave memory (storage has them), so a
        controller running for months holds a bounded window of history."""
        keep = self.config.keep_ended_s
        if keep is None:
            return
        for order_id in [
            oid for oid, o in self.orders.items() if o.state.terminal and o.history and o.history[-1].at < now - keep
        ]:
            del self.orders[order_id]
            self._unservable.discard(order_id)

    def open_orders(self) -> list[TransportOrder]:
        return [o for o in self.orders.values() if not o.state.terminal]

    def take_commands(self) -> list[Command]:
        out, self._outbox = self._outbox, []
        return out

    def take_commands_of(self, kind: type | tuple[type, ...]) -> list[Command]:
        """Take only the commands of one kind out of the outbox (the rest stay for the shell)."""
        taken = [c for c in self._outbox if isinstance(c, kind)]
        self._outbox = [c for c in self._outbox if not isinstance(c, kind)]
        return taken

    def continue_numbering_after(self, number: int) -> None:
        """New order ids continue after `number` (ids already in storage are never reused)."""
        self._order_seq = max(self._order_seq, number)

    def _committed(self, vehicle_id: str, stop: Stop) -> bool:
        """Whether the stop is of an order committed to the vehicle (in its tour), not just assigned."""
        order = self.orders[stop.order_id]
        return order.vehicle_id == vehicle_id and order.state.started

    @staticmethod
    def _tour(loads: int, stops: tuple[Stop, ...]) -> list[str]:
        """The orders picked up along `stops` until a vehicle with `loads` on board is empty."""
        picked: list[str] = []
        for stop in stops:
            if stop.kind is StopKind.PICKUP:
                picked.append(stop.order_id)
                loads += 1
            else:
                loads -= 1
            if loads <= 0:
                break
        return picked

    @property
    def holding(self) -> bool:
        """In the start-up hold: no path released yet (see `hold_releases`)."""
        return self._hold_until is not None

    def hold_releases(self, until: float) -> None:
        """Release no path before `until`: a controller that (re)starts does not know yet where
        every vehicle stands, and must not send one through a node another stands on. Orders
        are still taken and planned; at the first tick after `until` every route is released
        as far as the claims allow."""
        self._hold_until = until

    def _hand_back_unloaded(self, v: Vehicle, reason: str) -> Vehicle:
        """Orders the vehicle holds but has not loaded go back to the dispatcher; the vehicle
        without them is returned (not yet stored)."""
        current = v.task.order_id if v.task is not None else None
        handed: set[str] = set()
        for oid in sorted({s.order_id for s in v.stops} | ({current} if current else set())):
            q = self.orders[oid]
            if q.state in (OrderState.ASSIGNED, OrderState.TO_PICKUP) and q.vehicle_id == v.id:
                self._move(q, OrderState.ACCEPTED, reason=reason)
                handed.add(oid)
        self._dispatch_wanted = True
        task = None if current in handed else v.task
        return replace(v, task=task, stops=tuple(s for s in v.stops if s.order_id not in handed))

    def set_in_service(self, vehicle_id: str, in_service: bool) -> Vehicle:
        """Take a vehicle out of service (it finishes a load it carries, gets nothing new, and hands
        back what it has not loaded) or put it back."""
        v = self._vehicle(vehicle_id)
        if not in_service and v.in_service:
            v = self._hand_back_unloaded(v, f"{vehicle_id} taken out of service")
        if in_service and not v.in_service:
            self._alarm("vehicle-in-service", f"{vehicle_id} is back in service", vehicle_id)
        self._put_vehicle(replace(v, in_service=in_service))
        self._dispatch_wanted = True
        return self.vehicles[vehicle_id]

    def _quarantine_vehicle(self, vehicle_id: str, what: str, exc: Exception) -> None:
        why = f"{what} failed: {type(exc).__name__}: {exc}"[:300]
        self._quarantining.add(vehicle_id)
        try:
            self.set_in_service(vehicle_id, False)
        except Exception:  # its record is what failed: at least no new work goes to it
            self.vehicles[vehicle_id] = replace(self.vehicles[vehicle_id], in_service=False)
        finally:
            self._quarantining.discard(vehicle_id)
        self._alarm(
            "vehicle-quarantined",
            f"{vehicle_id} taken out of service: {why}; check it, then put it back in service",
            vehicle_id,
        )

    @contextmanager
    def _isolated(self, vehicle_id: str, what: str) -> Iterator[None]:
        """Planning one vehicle's path must not stop the others': an error in it takes that
        vehicle out of service with an alarm naming it and why (`handle` does the same for a
        vehicle's event); the tick or dispatch run it was part of goes on. While the vehicle is
        being taken out, the error is passed up instead (its record is what fails)."""
        try:
            yield
        except Exception as exc:
            if vehicle_id in self._quarantining or vehicle_id not in self.vehicles:
                raise
            self._quarantine_vehicle(vehicle_id, what, exc)

    def _relocated(self, vehicle_id: str, node: str) -> bool:
        """Traffic has the vehicle standing at `node` now; False (a `position-conflict` alarm, the
        vehicle out of service) if it cannot be there: another vehicle holds that node."""
        try:
            self.traffic.relocate(vehicle_id, node)
        except ValueError as exc:
            self._alarm("position-conflict", f"{vehicle_id} reports standing at {node}: {exc}", vehicle_id)
            self.set_in_service(vehicle_id, False)
            return False
        return True

    def _move(
        self,
        order: TransportOrder,
        state: OrderState,
        vehicle_id: str | None = None,
        reason: str | None = None,
        decision: Decision | None = None,
    ) -> TransportOrder:
        """The order's next state, published once; a new assignment carries its `decision`,
        any other move keeps none (it is about the vehicle the order has)."""
        moved = order.transition(state, self.clock.now(), vehicle_id=vehicle_id, reason=reason)
        if decision is not None or state is OrderState.ACCEPTED:
            moved = replace(moved, decision=decision)
        self._put_order(moved)
        return moved

    def _put_order(self, order: TransportOrder) -> None:
        self.orders[order.id] = order
        self._outbox.append(OrderChanged(order))

    def _put_vehicle(self, vehicle: Vehicle, publish: bool = True) -> None:
        self.vehicles[vehicle.id] = vehicle
        if publish:
            self._outbox.append(VehicleChanged(vehicle))

    def _alarm(self, code: str, message: str, vehicle_id: str | None = None, order_id: str | None = None) -> None:
        alarm = Alarm(code, message, vehicle_id, order_id)
        self.alarms.append(alarm)
        self._outbox.append(alarm)
