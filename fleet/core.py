"""The controller core: one state machine, events in, commands out.

The core does no I/O and reads time only from the injected clock. Shells (the simulator's runner,
the server) feed it events and carry out the commands it leaves in its outbox.

Concurrency contract: a `Controller` has a single writer. Call it from one thread or one asyncio
loop only; adapters post events to that writer and never call in while holding their own locks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from fleet import unjam
from fleet.clock import Clock
from fleet.dispatcher import AssignRequest, DispatchConfig, DispatchDecision, Dispatcher, VehicleAvailability, working
from fleet.events import (
    AbilitiesReported,
    ActionFinished,
    ActionKind,
    Alarm,
    BaseRequested,
    CancelDrive,
    Command,
    CommandRefused,
    ConnectionChanged,
    DriveCancelled,
    DriveNodes,
    DriveRejected,
    Event,
    InitPosition,
    LoadReported,
    NodeReached,
    OrderChanged,
    OrderLost,
    PauseVehicle,
    StartAction,
    StateReport,
    StopCharging,
    Tick,
    TransferProblem,
    VehicleChanged,
    VehicleMoved,
    VehicleStatus,
)
from fleet.model import (
    Decision,
    OrderState,
    Task,
    TaskKind,
    TaskPhase,
    Transition,
    TransportOrder,
    Vehicle,
    order_number,
)
from fleet.routing import TimedRouter
from fleet.solving import MissingTravel, PendingSolve, Solver
from fleet.traffic import TrafficManager, lane_resource
from maps import FacilityMap, Station
from planners.assignment import LATENESS_PER_COMPLETION, AssignmentPlan, Stop, StopKind
from planners.graph import NoPathError, compile_map
from planners.precedence import Walk, project
from planners.sipp import Plan

MAX_PRIORITY = 10


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    lookahead_nodes: int = 3
    deadlock_check_s: float = 1.0
    redispatch_s: float = 30.0  # re-run the dispatcher this often even without a trigger (batteries drain)
    offline_grace_s: float = 30.0  # an offline vehicle keeps its unstarted orders this long
    planned_traffic: bool = True  # routes planned in time (SIPP), turns taken in the planned order
    clear_s: float = 1.0  # margin around each planned node occupation
    replan_late_s: float = 30.0  # a vehicle this late for its next planned turn is planned again
    idle_stay_s: float = 30.0  # how long plans expect a vehicle with no route onward to stand on a through node
    replan_every_s: float = 10.0  # at most this often per vehicle (late, or driving without a plan)


class OrderRejected(ValueError):
    """A transport request the plant cannot serve; `field` names the offending request field."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


def _no_stopwatch() -> float:
    return 0.0


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _check_priority(priority: int) -> None:
    if not 0 <= priority <= MAX_PRIORITY:
        raise OrderRejected("priority", f"must be between 0 and {MAX_PRIORITY}")


@dataclass
class ControllerStats:
    deadlocks: int = 0  # circular waits detected
    deadlocks_resolved: int = 0  # of those, broken by routing a vehicle around or aside
    deadlocks_unresolved: int = 0  # of those, found unbreakable when detected (alarm raised)
    moved_aside: int = 0  # idle vehicles sent off the way of waiting ones
    replans: int = 0  # routes planned again because the vehicle was off its plan or late
    dispatch_runs: int = 0
    reassignments: int = 0
    dispatch_s: float = 0.0  # compute time spent dispatching, by the injected stopwatch
    routes_planned: int = 0
    routes_unplanned: int = 0  # of those, SIPP found no plan: the vehicle drives on claims alone
    planning_s: float = 0.0  # compute time spent planning routes (SIPP), by the injected stopwatch


@dataclass(frozen=True)
class _Solving:
    """A dispatch solve running in the solver pool: what it was asked, on which orders as they
    stood, on which graph version, at what time."""

    future: PendingSolve
    request: AssignRequest
    orders: Mapping[str, TransportOrder]
    graph_version: int
    asked_at: float


class Controller:
    """Orders, vehicles, dispatcher and traffic for one facility map."""

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
        self._solving: _Solving | None = None
        self._graph_version = 0
        self._stopwatch = stopwatch or _no_stopwatch
        self.config = config or ControllerConfig()
        self._planned_at: dict[str, float] = {}  # vehicle -> when its route was last set
        self._turn_waits: dict[tuple[str, str], float] = {}  # (waiting, for whom) -> since when
        self.orders: dict[str, TransportOrder] = {}
        self.vehicles: dict[str, Vehicle] = {}
        self.alarms: list[Alarm] = []
        self.stats = ControllerStats()
        self._outbox: list[Command] = []
        self._order_seq = 0
        self._dispatch_wanted = False
        self._last_dispatch = -math.inf
        self._last_deadlock_check = -math.inf
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

    # ---- inputs -----------------------------------------------------------------------------

    def submit_order(
        self,
        pickup: str,
        dropoff: str,
        load_type: str | None = None,
        priority: int = 0,
        due_at: float | None = None,
        ready_at: float | None = None,
    ) -> TransportOrder:
        """Check and accept a transport order at once (callers without storage: the simulator)."""
        return self.accept(self.check_order(pickup, dropoff, load_type, priority, due_at, ready_at))

    def accept(self, order: TransportOrder) -> TransportOrder:
        """Take a checked order (from `check_order` or `check_call`) into the fleet: a shell with
        storage calls this only once the order is committed."""
        self._put_order(order)
        self._dispatch_wanted = True
        return order

    def check_order(
        self,
        pickup: str,
        dropoff: str,
        load_type: str | None = None,
        priority: int = 0,
        due_at: float | None = None,
        ready_at: float | None = None,
    ) -> TransportOrder:
        """The order a transport request makes, numbered but not taken yet (`accept`), or
        OrderRejected naming the field at fault. A `ready_at` in the future holds the pick-up
        until then (the vehicle waits at the station)."""
        stations = self.map.station_by_id
        if pickup not in stations:
            raise OrderRejected("pickup", f"unknown station '{pickup}'")
        if dropoff not in stations:
            raise OrderRejected("dropoff", f"unknown station '{dropoff}'")
        src, dst = stations[pickup], stations[dropoff]
        if not src.kind.can_pick:
            raise OrderRejected(
                "pickup", f"station '{pickup}' is a {src.kind.value} station, loads cannot be picked there"
            )
        if not dst.kind.can_drop:
            raise OrderRejected(
                "dropoff", f"station '{dropoff}' is a {dst.kind.value} station, loads cannot be dropped there"
            )
        if pickup == dropoff:
            raise OrderRejected("dropoff", "drop-off station is the pick-up station")
        common = src.load_types & dst.load_types
        if load_type is None:
            if not common:
                raise OrderRejected("dropoff", f"stations '{pickup}' and '{dropoff}' share no load type")
            load_type = sorted(common)[0]
        elif load_type not in common:
            raise OrderRejected("load_type", f"'{load_type}' is not handled at both '{pickup}' and '{dropoff}'")
        if not any(load_type in t.load_types for t in self.map.vehicle_types):
            raise OrderRejected("load_type", f"no vehicle type carries '{load_type}'")
        _check_priority(priority)
        now = self.clock.now()
        if due_at is not None and not math.isfinite(due_at):
            raise OrderRejected("due_at", "due time must be a finite number of seconds since the epoch")
        if due_at is not None and due_at <= now:
            raise OrderRejected("due_at", f"due time already past ({now - due_at:.0f} s ago)")
        if ready_at is not None and not math.isfinite(ready_at):
            raise OrderRejected("ready_at", "ready time must be a finite number of seconds since the epoch")
        if due_at is not None and ready_at is not None and due_at <= ready_at:
            raise OrderRejected("due_at", f"due {ready_at - due_at:.0f} s before the load is ready (ready_at)")
        if not math.isfinite(self.full_graph.time(src.node, dst.node)):
            raise OrderRejected("dropoff", f"station '{dropoff}' cannot be reached from '{pickup}'")
        self._order_seq += 1
        order = TransportOrder(
            id=f"TO-{self._order_seq:06d}",
            pickup=pickup,
            dropoff=dropoff,
            load_type=load_type,
            priority=priority,
            created_at=now,
            due_at=due_at,
            ready_at=ready_at,
            history=(Transition(now, OrderState.ACCEPTED),),
        )
        return order

    def submit_call(self, station: str, need: str, load_type: str | None = None, priority: int = 0) -> TransportOrder:
        """Check and accept a station's call at once (callers without storage: the simulator)."""
        return self.accept(self.check_call(station, need, load_type, priority))

    def check_call(self, station: str, need: str, load_type: str | None = None, priority: int = 0) -> TransportOrder:
        """The order a station's call makes, not taken yet (`accept`): `material` brings a load
        from the nearest station that can give one, `removal` takes the station's load to the
        nearest station that can take it."""
        stations = self.map.station_by_id
        if station not in stations:
            raise OrderRejected("station", f"unknown station '{station}'")
        here = stations[station]
        if need not in ("material", "removal"):
            raise OrderRejected("need", "must be 'material' or 'removal'")
        if need == "material" and not here.kind.can_drop:
            raise OrderRejected("need", f"station '{station}' is a {here.kind.value} station: nothing can be delivered")
        if need == "removal" and not here.kind.can_pick:
            raise OrderRejected("need", f"station '{station}' is a {here.kind.value} station: nothing can be taken")
        if load_type is not None and load_type not in here.load_types:
            raise OrderRejected("load_type", f"station '{station}' does not handle '{load_type}'")
        wanted = {load_type} if load_type else set(here.load_types)
        candidates = []
        for other in self.map.stations:
            if other.id == station or not (other.load_types & wanted):
                continue
            if (need == "material" and other.kind.can_pick) or (need == "removal" and other.kind.can_drop):
                seconds = (
                    self.full_graph.time(other.node, here.node)
                    if need == "material"
                    else self.full_graph.time(here.node, other.node)
                )
                if math.isfinite(seconds):
                    candidates.append((seconds, other.id))
        if not candidates:
            raise OrderRejected(
                "station", f"no station can {'supply' if need == 'material' else 'take'} a load for '{station}'"
            )
        _, counterpart = min(candidates)
        pickup, dropoff = (counterpart, station) if need == "material" else (station, counterpart)
        common = sorted(stations[pickup].load_types & stations[dropoff].load_types & wanted)
        return self.check_order(pickup, dropoff, load_type or common[0], priority)

    def _open_order(self, order_id: str) -> TransportOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderRejected("order_id", f"unknown order '{order_id}'")
        if order.state.terminal:
            raise OrderRejected("order_id", f"order {order_id} is already {order.state.value}")
        return order

    def check_priority(self, order_id: str, priority: int) -> TransportOrder:
        """The order as `set_priority` would make it (or `OrderRejected`); nothing changes yet:
        the service commits it first."""
        order = self._open_order(order_id)
        _check_priority(priority)
        changed = replace(order, priority=priority)
        if order_id in self.quarantined:
            changed = replace(changed, reason="released from quarantine by a change: dispatched again")
        return changed

    def set_priority(self, order_id: str, priority: int) -> TransportOrder:
        """Change an open order's priority; the next dispatch takes it into account."""
        changed = self.check_priority(order_id, priority)
        self.quarantined.pop(order_id, None)
        self._put_order(changed)
        self._dispatch_wanted = True
        return changed

    def check_cancel(self, order_id: str, reason: str = "cancelled by operator") -> TransportOrder:
        """The order as `cancel_order` would leave it (or `OrderRejected`); nothing changes yet."""
        order = self._open_order(order_id)
        if order.state.loaded:
            raise OrderRejected("order_id", f"order {order_id} is {order.state.value}; the load is on a vehicle")
        return order.transition(OrderState.CANCELLED, self.clock.now(), reason=reason)

    def cancel_order(self, order_id: str, reason: str = "cancelled by operator") -> TransportOrder:
        """Cancel an order that no vehicle holds the load of yet."""
        self.check_cancel(order_id, reason)
        order = self.orders[order_id]
        driving = order.state is OrderState.TO_PICKUP
        self.quarantined.pop(order_id, None)
        order = self._move(order, OrderState.CANCELLED, reason=reason)
        if order.vehicle_id is not None:
            v = self.vehicles[order.vehicle_id]
            v = replace(v, stops=tuple(s for s in v.stops if s.order_id != order_id))
            if v.task is not None and v.task.order_id == order_id:
                v = replace(v, task=None)
                if driving:
                    # Release nothing more; the vehicle stops at its next node and reports where.
                    self.traffic.set_route(v.id, [self.traffic.released_end(v.id)])
                    v = replace(v, stopping=True)
                    self._outbox.append(CancelDrive(v.id))
            self._put_vehicle(v)
        self._dispatch_wanted = True
        return order

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

    def close_lane(self, lane_id: str, closed: bool = True) -> None:
        """Operator closes (or opens) a lane at run time. New routes avoid it at once; vehicles
        whose unreleased route crosses it are re-routed from where their released path ends; a
        vehicle already released onto it drives through, and the lane closes behind it."""
        if lane_id not in self.map.lane_by_id:
            raise OrderRejected("lane_id", f"unknown lane '{lane_id}'")
        self._set_closure("lane", lane_id, self.closed_lanes, closed)

    def close_zone(self, zone_id: str, closed: bool = True) -> None:
        """Operator closes (or opens) a zone, say a manual forklift area or a blocked fire door:
        every lane that crosses it closes as `close_lane` closes one. Lanes an operator closed by
        themselves stay closed when the zone opens."""
        if zone_id not in self._zone_lanes:
            raise OrderRejected("zone_id", f"unknown zone '{zone_id}'")
        self._set_closure("zone", zone_id, self.closed_zones, closed)

    def _set_closure(self, kind: str, ident: str, closed_set: set[str], closed: bool) -> None:
        if closed:
            closed_set.add(ident)
        else:
            closed_set.discard(ident)
        state = "closed" if closed else "opened"
        self._alarm(f"{kind}-{state}", f"{kind} {ident} {state}")
        self._apply_closures()

    def _apply_closures(self) -> None:
        wanted = set(self.closed_lanes).union(*(self._zone_lanes[z] for z in self.closed_zones))
        closing, opening = wanted - self._closed_now, self._closed_now - wanted
        self._closed_now = wanted
        lanes = self.map.lane_by_id
        resources = {lid: lane_resource(lanes[lid].start, lanes[lid].end) for lid in closing | opening}
        for lid in sorted(closing):
            self.traffic.close(resources[lid])
        for lid in sorted(opening):
            self.traffic.reopen(resources[lid])
        self.graph = compile_map(self.map, closed_lanes=frozenset(wanted))
        self.dispatcher.use_graph(self.graph)
        self._graph_version += 1
        rerouted: set[str] = set()
        for lid in sorted(closing):
            for vid in self.traffic.planned_through(resources[lid]):
                if vid not in rerouted:
                    rerouted.add(vid)
                    self._reroute(vid)
        opened = {resources[lid] for lid in opening}
        for vid, reason in list(self.traffic.waiting.items()):
            if reason.resource in opened:
                self._release(vid)
        self._dispatch_wanted = True

    def _reroute(self, vehicle_id: str) -> None:
        self._set_route(vehicle_id, self.traffic.route_goal(vehicle_id))
        self._release(vehicle_id)

    def _set_route(self, vehicle_id: str, goal: str) -> None:
        """Route the vehicle from its released end to `goal`: planned in time around what the
        others are expected to do when that works (it then takes its turns), else the fastest
        path (it only claims)."""
        start = self.traffic.released_end(vehicle_id)
        now = self.clock.now()
        self._planned_at[vehicle_id] = now
        plan = None
        fastest: list[str] | None = None
        if self.config.planned_traffic and start != goal:
            self.traffic.drop_turns(vehicle_id)
            walks = {o: self._walk(o, now) for o, ov in self.vehicles.items() if ov.placed}
            mine = walks[vehicle_id]
            claimed = {o: w.claimed for o, w in walks.items()}
            stay = self._stay(self.vehicles[vehicle_id], goal)
            heading = self._heading_at_end(vehicle_id)
            turns = self.traffic.turn_order()
            projections: dict[float, tuple[dict[str, Plan], float]] = {}

            def attempt(stay_at_end: float, no_through: frozenset[str]) -> Plan | None:
                """SIPP around the others as projected with this vehicle standing at its released
                end for `stay_at_end` seconds once there (each projection made once)."""
                if stay_at_end not in projections:
                    walks[vehicle_id] = replace(mine, nodes=mine.nodes[: mine.claimed + 1], stay=stay_at_end)
                    expected = project(walks, turns, self.full_graph.edge_seconds, now)
                    projections[stay_at_end] = expected, expected.pop(vehicle_id)[-1].arrive
                others, start_time = projections[stay_at_end]
                started = self._stopwatch()
                found = self.router.plan(
                    self.graph, start, goal, start_time, others, claimed, now, no_through, stay, heading
                )
                self.stats.planning_s += self._stopwatch() - started
                return found

            # First around the others as they move while this vehicle stands at its released end
            # for good (what they will do if it gets no plan); if that fails, as they move once it
            # has left that end: whoever waits for its node then passes after it, which makes a
            # head-on meeting or a chain of waits through its node plannable. Both projections
            # honour the turns already fixed, so either plan slots in without closing a cycle.
            basis = math.inf
            plan = attempt(math.inf, self._no_through)
            if plan is None:
                plan, basis = attempt(0.0, self._no_through), 0.0
            if plan is None:
                # A parking spot or charger that no way round avoids (the vehicle stands in a bay
                # whose only exit runs through it) may be driven through; others not.
                fastest = self._path(vehicle_id, start, goal)
                relaxed = self._no_through.difference(fastest[1:-1])
                if relaxed != self._no_through:
                    plan, basis = attempt(math.inf, relaxed), math.inf
            self.traffic.retime_turns(projections[basis if plan is not None else math.inf][0])
            self.stats.routes_planned += 1
        if plan is not None:
            self.traffic.set_route(vehicle_id, [p.node for p in plan], [a.depart for a in plan[:-1]])
        else:
            self.stats.routes_unplanned += self.config.planned_traffic and start != goal
            self.traffic.set_route(vehicle_id, fastest or self._path(vehicle_id, start, goal))

    def _heading_at_end(self, vehicle_id: str) -> float:
        """Where the vehicle will face at the end of its released path: along its last lane, or
        as it stands (a vehicle that turns on the spot turns from there before it leaves)."""
        v = self.vehicles[vehicle_id]
        released, _ = self.traffic.remaining(vehicle_id)
        if not released:
            return v.heading
        return self.full_graph.heading(released[-2] if len(released) > 1 else v.node, released[-1])

    def _walk(self, vehicle_id: str, now: float) -> Walk:
        """What the vehicle is to drive from where it stands, for projecting traffic: it cannot
        move while paused or unable; at a station for a pick or drop it leaves after the service."""
        v = self.vehicles[vehicle_id]
        nodes = tuple(self.traffic.route_nodes(vehicle_id))
        released, _ = self.traffic.remaining(vehicle_id)
        ready = now if self.can_move(v) else math.inf
        return Walk(nodes, len(released), ready, self._stay(v, nodes[-1]))

    def _stay(self, v: Vehicle, goal: str) -> float:
        """How long the vehicle is expected to stand at the end of its route: a station's
        service time for a pick or drop, `idle_stay_s` on a through node with no route onward,
        for good otherwise (parking, charging)."""
        task = v.task
        if task is not None and task.kind is TaskKind.ORDER and task.goal == goal:
            return self._service_at.get(goal, math.inf) + 2 * self.config.clear_s
        if goal not in self._no_through and (task is None or task.goal != goal):
            # Without work, or given work and not routed yet, on a node others drive through: it
            # leaves soon (its route comes, or it is moved aside for whoever waits for it).
            # Projected as standing for good, it would make every route through its node
            # unplannable, and at density most vehicles would drive on claims alone.
            return self.config.idle_stay_s
        return math.inf

    def can_move(self, v: Vehicle) -> bool:
        """Whether the vehicle drives when told to: not paused, online, automatic, no fatal error."""
        fatal = any(e.startswith("FATAL") for e in v.errors)
        return not (v.paused or self.fleet_paused) and v.online and v.automatic and not fatal

    def _path(self, vehicle_id: str, start: str, goal: str) -> list[str]:
        """Fastest path on the open lanes that does not drive through a parking spot or charger
        (a cart standing there would block it); when closures cut the goal off, the path over the
        closed lane, so the vehicle waits at the closure (and says so) until an operator opens it."""
        try:
            path = self.graph.shortest_path(start, goal)
        except NoPathError:
            self._alarm("blocked-by-closure", f"{vehicle_id} cannot reach {goal} while lanes are closed", vehicle_id)
            return self.full_graph.shortest_path(start, goal)
        if not any(n in self._no_through for n in path[1:-1]):
            return path

        def through_a_bay(a: str, b: str) -> bool:
            return b in self._no_through and b != goal

        # A bay that is a shortcut: the fastest path that keeps out of them, if there is one.
        around = next((p for p in self.graph.paths_from(start, through_a_bay) if p[-1] == goal), None)
        return around if around is not None else path

    def set_in_service(self, vehicle_id: str, in_service: bool) -> Vehicle:
        """Take a vehicle out of service (it finishes a load it carries, gets nothing new, and hands
        back what it has not loaded) or put it back."""
        v = self._vehicle(vehicle_id)
        if not in_service and v.in_service:
            v = self._hand_back_unloaded(v, f"{vehicle_id} taken out of service")
        self._put_vehicle(replace(v, in_service=in_service))
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

    def _vehicle(self, vehicle_id: str) -> Vehicle:
        if vehicle_id not in self.vehicles:
            raise OrderRejected("vehicle_id", f"unknown vehicle '{vehicle_id}'")
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

    def _sync_pause(self, vehicle_id: str) -> None:
        if not self.vehicles[vehicle_id].placed:
            return  # told when it is placed
        held = self.fleet_paused or self.vehicles[vehicle_id].paused
        if self._pause_sent.get(vehicle_id, False) != held:
            self._pause_sent[vehicle_id] = held
            self._outbox.append(PauseVehicle(vehicle_id, held))

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

    def take_commands(self) -> list[Command]:
        out, self._outbox = self._outbox, []
        return out

    def take_commands_of(self, kind: type | tuple[type, ...]) -> list[Command]:
        """Take only the commands of one kind out of the outbox (the rest stay for the shell)."""
        taken = [c for c in self._outbox if isinstance(c, kind)]
        self._outbox = [c for c in self._outbox if not isinstance(c, kind)]
        return taken

    def restore(self, orders: list[TransportOrder]) -> None:
        """Take back the open orders storage held when the controller stopped.

        Orders no vehicle had loaded return to the dispatcher. An order whose load was on a vehicle
        stays that vehicle's: when the vehicle is (or comes) on the map it drives to the drop-off
        and delivers; an interrupted drop is done again, and the order finishes once.
        """
        for order in orders:
            if order.state.terminal:
                continue
            self._order_seq = max(self._order_seq, order_number(order.id))
            self.orders[order.id] = order
            if order.state.loaded and order.vehicle_id:
                self._loaded_awaiting.setdefault(order.vehicle_id, []).append(order.id)
                if order.vehicle_id in self.vehicles and self.vehicles[order.vehicle_id].placed:
                    self._resume_delivery(order.vehicle_id)
            elif order.state is not OrderState.ACCEPTED:
                self._move(order, OrderState.ACCEPTED, reason="restored after a controller restart")
        self._dispatch_wanted = True

    def _resume_delivery(self, vehicle_id: str) -> None:
        """The vehicle carries restored loads: it delivers them, in the order they were accepted."""
        loads = sorted(self._loaded_awaiting.pop(vehicle_id), key=order_number)
        for oid in loads:
            if self.orders[oid].state is not OrderState.TO_DROPOFF:
                self._move(self.orders[oid], OrderState.TO_DROPOFF, reason="restored after a controller restart")
        v = self.vehicles[vehicle_id]
        drops = tuple(Stop(oid, StopKind.DROPOFF) for oid in loads)
        # An idle vehicle (parked, say) sets out at once; a busy one delivers after its task.
        task = None if v.idle else v.task
        self._put_vehicle(replace(v, task=task, loads=(*v.loads, *loads), stops=(*drops, *v.stops)))
        if task is None:
            self._next_task(vehicle_id)

    def continue_numbering_after(self, number: int) -> None:
        """New order ids continue after `number` (ids already in storage are never reused)."""
        self._order_seq = max(self._order_seq, number)

    # ---- queries ----------------------------------------------------------------------------

    def wait_reason(self, vehicle_id: str) -> str | None:
        if (v := self.vehicles.get(vehicle_id)) is not None and v.safety_stop is not None:
            return f"stopped by its safety system: {v.safety_stop}"
        if vehicle_id in self._held_by_cell:
            return self._held_by_cell[vehicle_id]
        if (oid := self._awaiting_load.get(vehicle_id)) is not None:
            order = self.orders[oid]
            left = (order.ready_at or 0.0) - self.clock.now()
            return f"waits at {order.pickup} for the load of {oid}, ready in {max(0.0, left):.0f} s"
        reason = self.traffic.waiting.get(vehicle_id)
        return reason.describe() if reason else None

    def waits(self) -> dict[str, tuple[str, str]]:
        """Every vehicle standing still for a reason: (cause, the reason in words). Causes: what
        traffic has in the way (node, lane, zone, turn), a load not ready at the pick-up (load),
        a robot cell's transfer that holds the vehicle (cell), its safety system (safety)."""
        out = {vid: (w.cause, w.describe()) for vid, w in self.traffic.stopped_waits().items()}
        for vid in self._awaiting_load:
            out[vid] = ("load", self.wait_reason(vid) or "")
        for vid, why in self._held_by_cell.items():
            out[vid] = ("cell", why)
        for vid in self._safety_stopped():
            out[vid] = ("safety", self.wait_reason(vid) or "")
        return out

    def _safety_stopped(self) -> list[str]:
        return [vid for vid, v in self.vehicles.items() if v.safety_stop is not None]

    def wait_causes(self) -> dict[str, str]:
        """The causes of `waits` alone (no words: cheap enough for every simulation step)."""
        out = {vid: w.cause for vid, w in self.traffic.stopped_waits().items()}
        out.update(dict.fromkeys(self._awaiting_load, "load"))
        out.update(dict.fromkeys(self._held_by_cell, "cell"))
        out.update(dict.fromkeys(self._safety_stopped(), "safety"))
        return out

    def path_ahead(self, vehicle_id: str) -> tuple[list[str], list[str]]:
        """(base: nodes released to the vehicle still ahead, horizon: planned, not released)."""
        if not self.vehicles[vehicle_id].placed:
            return [], []
        return self.traffic.remaining(vehicle_id)

    def open_orders(self) -> list[TransportOrder]:
        return [o for o in self.orders.values() if not o.state.terminal]

    # ---- event handlers ---------------------------------------------------------------------

    def _on_node_reached(self, event: NodeReached) -> None:
        v = self.vehicles[event.vehicle_id]
        self.traffic.reached(v.id, event.node)
        pos = self.map.node_by_id[event.node]
        self._put_vehicle(replace(v, node=event.node, x=pos.x, y=pos.y), publish=False)
        # The vehicle freed what lies behind it: it and anyone waiting on it may move on.
        self._release(v.id)
        self._release_waiting_on(v.id)
        if self.traffic.at_goal(v.id):
            self._arrived(v.id)

    def _on_transfer_problem(self, event: TransferProblem) -> None:
        """The cell did not transfer: the vehicle keeps its action running (it stays at the
        station, the load where it is) and the operator is told to retry or abort."""
        v = self.vehicles[event.vehicle_id]
        order_id = v.task.order_id if v.task else None
        why = f"{event.reason}; retry or abort the transfer at {event.station_id}"
        self._held_by_cell[v.id] = why
        self._alarm("transfer-failed", f"{v.id}: {why}", v.id, order_id)
        self._put_vehicle(v)  # its wait reason changed

    def _on_action_finished(self, event: ActionFinished) -> None:
        self._held_by_cell.pop(event.vehicle_id, None)
        v = self.vehicles[event.vehicle_id]
        task = v.task
        if task is None or task.phase is not TaskPhase.ACTION:
            self._alarm("unexpected-action", f"{v.id} finished {event.action.value} without a running action", v.id)
            return
        if event.action is ActionKind.CHARGE:
            self._stopping_charge.discard(v.id)
            self._put_vehicle(replace(v, task=None))
            if v.stops:
                self._next_task(v.id)  # the order that interrupted the charge
            self._dispatch_wanted = True
            return
        assert task.order_id is not None
        order = self.orders[task.order_id]
        if not event.ok:
            # What it carries stays on record: a failed drop leaves the load on the vehicle.
            self._move(order, OrderState.FAILED, reason=event.reason or f"{event.action.value} failed")
            self._alarm("action-failed", f"{v.id}: {event.action.value} failed: {event.reason}", v.id, order.id)
            self._put_vehicle(replace(v, task=None, stops=tuple(s for s in v.stops if s.order_id != order.id)))
            self._next_task(v.id)
            return
        if event.action is ActionKind.PICK:
            self._move(order, OrderState.TO_DROPOFF)
            drop = Stop(order.id, StopKind.DROPOFF)
            stops = v.stops if drop in v.stops else (drop, *v.stops)
            self._put_vehicle(replace(v, loads=(*v.loads, order.id), task=None, stops=stops))
        else:
            self._move(order, OrderState.FINISHED)
            self._put_vehicle(replace(v, loads=tuple(o for o in v.loads if o != order.id), task=None))
        self._next_task(v.id)

    def _on_state(self, event: StateReport) -> None:
        v = self.vehicles[event.vehicle_id]
        battery = min(1.0, max(0.0, event.battery))
        if (v.x, v.y, v.heading, v.battery) == (event.x, event.y, event.heading, battery):
            return  # a vehicle standing still reports the same, and a copy per report adds up
        self._put_vehicle(replace(v, x=event.x, y=event.y, heading=event.heading, battery=battery), publish=False)

    def _on_drive_rejected(self, event: DriveRejected) -> None:
        """The vehicle refused its path: take it out of service (its claims stay, it may still be
        driving its earlier base) and hand the orders it has not loaded back to the dispatcher."""
        v = self.vehicles[event.vehicle_id]
        order_id = v.task.order_id if v.task else None
        self._alarm("drive-rejected", f"{v.id} rejected its path: {event.reason}", v.id, order_id)
        if v.task is not None and v.task.phase is TaskPhase.ACTION and order_id is not None:
            order = self.orders[order_id]
            if order.state is OrderState.LOADING:
                # The pick was refused, not started: the load is still at the station. The order
                # goes back to the dispatcher (another vehicle, or the operator) with the reason.
                self._move(order, OrderState.ACCEPTED, reason=f"{v.id} refused the pick: {event.reason}")
                v = replace(v, task=None, stops=tuple(s for s in v.stops if s.order_id != order_id))
        v = self._hand_back_unloaded(v, f"{v.id} rejected the path: {event.reason}")
        self._put_vehicle(replace(v, in_service=False))

    def _on_command_refused(self, event: CommandRefused) -> None:
        """The vehicle refused (or never answered) a command: the controller's expectation is
        undone, and the operator told the vehicle's reason. A refused pause leaves the vehicle
        unpaused as it reports; a refused charge ends the charge task; a cancel the vehicle did
        not carry out leaves it out of service, for it may still drive."""
        v = self.vehicles[event.vehicle_id]
        self._alarm("command-refused", f"{v.id} refused {event.command}: {event.reason}", v.id)
        if event.command in ("startPause", "stopPause"):
            self._pause_sent[v.id] = event.command == "stopPause"
            self._put_vehicle(replace(v, paused=event.command == "stopPause"))
            self._dispatch_wanted = True
        elif event.command == "startCharging" and v.task is not None and v.task.kind is TaskKind.CHARGE:
            self._stopping_charge.discard(v.id)
            self._put_vehicle(replace(v, task=None))
            self._dispatch_wanted = True
        elif event.command == "cancelOrder":
            self.set_in_service(v.id, False)

    def _on_abilities(self, event: AbilitiesReported) -> None:
        """The factsheet says what the vehicle cannot do: without pick or drop it gets no orders
        (and hands back those it has not loaded), and the operator is told why."""
        v = self.vehicles[event.vehicle_id]
        if event.lacks == v.lacks:
            return
        if event.lacks:
            self._alarm("vehicle-lacks", f"{v.id}: its factsheet lists no {', '.join(event.lacks)}", v.id)
        v = replace(v, lacks=event.lacks)
        if not v.available:
            v = self._hand_back_unloaded(v, f"{v.id} cannot {', '.join(event.lacks)} (factsheet)")
        self._put_vehicle(v)
        self._dispatch_wanted = True

    def _on_order_lost(self, event: OrderLost) -> None:
        """The vehicle restarted and lost its order: it stands where it reports and drives
        nothing more of it. Its route is planned again from there (a new order, not the old one
        sent again); loads are reconciled by what it reports (`_on_load`)."""
        v = self.vehicles[event.vehicle_id]
        self.traffic.stop_at(v.id, v.node)  # nothing released to it is driven any more
        if event.node != v.node and not self._relocated(v.id, event.node):  # it came back elsewhere
            return
        pos = self.map.node_by_id[event.node]
        task = v.task
        if task is not None and task.phase is TaskPhase.ACTION and task.kind is not TaskKind.PARK:
            task = replace(task, phase=TaskPhase.TRAVEL)  # its action went with the order: done again
            if task.order_id is not None and self.orders[task.order_id].state is OrderState.LOADING:
                self._move(self.orders[task.order_id], OrderState.TO_PICKUP, reason=f"{v.id} lost its pick")
            elif task.order_id is not None and self.orders[task.order_id].state is OrderState.UNLOADING:
                self._move(self.orders[task.order_id], OrderState.TO_DROPOFF, reason=f"{v.id} lost its drop")
        self._put_vehicle(replace(v, node=event.node, x=pos.x, y=pos.y, stopping=False, task=task))
        self._alarm("order-lost", f"{v.id} lost its order (restarted?): planned again from {event.node}", v.id)
        if task is not None and task.phase is TaskPhase.TRAVEL:
            self._drive_to(v.id, task.goal)
        self._release_waiting_on(v.id)
        self._dispatch_wanted = True

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

    def _on_moved(self, event: VehicleMoved) -> None:
        """The vehicle stands elsewhere than the controller has it (moved by hand) and holds
        nothing of ours: an idle or parked one is re-placed there (a `vehicle-moved` alarm), a
        busy one, or one reporting a node another vehicle holds, is taken out of service with a
        `position-conflict` alarm until the operator sets its position."""
        v = self.vehicles[event.vehicle_id]
        if not v.placed or v.node == event.node:
            return
        if v.task is not None and v.task.kind is not TaskKind.PARK:
            busy = f"{v.id} reports standing at {event.node} while {v.task.kind.value} at {v.node}; set its position"
            self._alarm("position-conflict", busy, v.id)
            self.set_in_service(v.id, False)
            return
        if not self._relocated(v.id, event.node):
            return
        pos = self.map.node_by_id[event.node]
        old = v.node
        self._put_vehicle(replace(v, node=event.node, x=pos.x, y=pos.y, task=self._parked_at(event.node)))
        self._alarm("vehicle-moved", f"{v.id} reports standing at {event.node}, not {old}: placed there", v.id)
        self._release_waiting_on(v.id)
        self._dispatch_wanted = True

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

    def _on_load(self, event: LoadReported) -> None:
        """The vehicle's own load sensing against what the pick and drop actions said: a mismatch
        outside a load action is raised for the operator (the controller keeps its own record)."""
        v = self.vehicles[event.vehicle_id]
        acting = v.task is not None and v.task.phase is TaskPhase.ACTION and v.task.kind is TaskKind.ORDER
        if not acting and event.loaded != bool(v.loads):
            expected = f"carrying {', '.join(v.loads)}" if v.loads else "empty"
            found = "a load" if event.loaded else "no load"
            carried = v.loads[0] if v.loads else None
            self._alarm("load-mismatch", f"{v.id} reports {found} but should be {expected}", v.id, carried)

    def _on_status(self, event: VehicleStatus) -> None:
        """Operating mode, errors, safety stops: a vehicle not in automatic mode or with a FATAL
        error gets no work and hands back what it has not loaded; an e-stopped one gets no new work
        and keeps its orders; every new error and safety stop is raised as an alarm."""
        v = self.vehicles[event.vehicle_id]
        for error in event.errors:
            if error not in v.errors:
                self._alarm("vehicle-error", f"{v.id}: {error}", v.id)
        for error in v.errors:
            if error not in event.errors:
                self._alarm("vehicle-error-cleared", f"{v.id}: {error}", v.id)
        if event.safety_stop != v.safety_stop:
            if event.safety_stop is not None:
                self._alarm("vehicle-safety-stop", f"{v.id} stopped by its safety system: {event.safety_stop}", v.id)
            else:
                self._alarm("vehicle-safety-cleared", f"{v.id}: safety stop ({v.safety_stop}) released", v.id)
        was_able = v.automatic and not any(e.startswith("FATAL") for e in v.errors)
        v = replace(v, automatic=event.automatic, mode=event.mode, errors=event.errors, safety_stop=event.safety_stop)
        able = v.automatic and not any(e.startswith("FATAL") for e in v.errors)
        if was_able and not able:
            v = self._hand_back_unloaded(v, f"{v.id} unavailable: mode {event.mode}, errors {len(event.errors)}")
        elif able and not was_able:
            self._dispatch_wanted = True
        self._put_vehicle(v)

    def _on_drive_cancelled(self, event: DriveCancelled) -> None:
        """The vehicle stopped at a node, or between two (it keeps the lane it stands on and the
        node ahead, and its next route starts there: never an assumed node)."""
        v = self.vehicles[event.vehicle_id]
        self.traffic.stop_at(v.id, event.node, event.ahead)
        if event.ahead:
            self._put_vehicle(replace(v, stopping=False, node=event.node))  # its position is as reported
        else:
            pos = self.map.node_by_id[event.node]
            self._put_vehicle(replace(v, stopping=False, node=event.node, x=pos.x, y=pos.y))
        self._release_waiting_on(v.id)
        self._dispatch_wanted = True

    def _on_connection(self, event: ConnectionChanged) -> None:
        v = self.vehicles[event.vehicle_id]
        now = self.clock.now()
        connection = "online" if event.online else (event.reason or "offline").lower()
        if event.online == v.online:
            if connection != v.connection:
                self._put_vehicle(replace(v, connection=connection, connection_since=now))
            return
        if event.online:
            self._put_vehicle(replace(v, online=True, offline_since=None, connection=connection, connection_since=now))
            self._dispatch_wanted = True
        else:
            self._put_vehicle(replace(v, online=False, offline_since=now, connection=connection, connection_since=now))
            self._alarm("vehicle-offline", f"{v.id} is offline ({event.reason or 'connection lost'})", v.id)

    def _return_orders_of_offline(self, now: float) -> None:
        """After the grace period, orders an offline vehicle has not loaded go back to the dispatcher."""
        for v in list(self.vehicles.values()):
            if v.online or v.offline_since is None or now - v.offline_since < self.config.offline_grace_s:
                continue
            reason = f"{v.id} offline for more than {self.config.offline_grace_s:.0f} s"
            # offline_since cleared: handed back once; the vehicle stays offline until it reports in.
            self._put_vehicle(replace(self._hand_back_unloaded(v, reason), offline_since=None))

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
            self.unjam_problem = None

    # ---- dispatching ------------------------------------------------------------------------

    def _dispatch(self, run: Callable[[], None]) -> None:
        started = self._stopwatch()
        try:
            run()
            self.dispatch_problem = None
        except Exception as exc:  # contained: one poison order or bug must not stop every dispatch
            self._dispatch_failed(exc)
        finally:
            self.stats.dispatch_s += self._stopwatch() - started

    def _dispatch_failed(self, exc: Exception) -> None:
        """A run raised: each order it could have decided on is solved alone to find the ones that
        make it fail. Those are quarantined (left out of every run, with an alarm naming them and
        why) until an operator changes or cancels them; the others are dispatched at the next run.
        When no single order is at fault, the run is tried again after `redispatch_s` and the
        failure stands in `dispatch_problem` (readiness and health report it)."""
        self._solving = None
        now = self.clock.now()
        fleet, _ = self._fleet_now()
        found = []
        for order in self._dispatchable():
            if order.state not in (OrderState.ACCEPTED, OrderState.ASSIGNED):
                continue
            try:
                self.dispatcher.probe(order, fleet, now)
            except Exception as poison:
                found.append(order.id)
                self.quarantine(order.id, f"{type(poison).__name__}: {poison}")
        if found:
            self.dispatch_problem = None
            self._dispatch_wanted = True
            return
        problem = f"dispatching fails: {type(exc).__name__}: {exc}"
        if problem != self.dispatch_problem:
            self._alarm("dispatch-failed", f"{problem}; tried again in {self.config.redispatch_s:.0f} s")
        self.dispatch_problem = problem

    def quarantine(self, order_id: str, why: str) -> None:
        """Keep an open order out of dispatching (the dispatcher fails on it): it waits, says why,
        and raises one alarm; `set_priority` (a change) releases it, `cancel_order` ends it."""
        order = self.orders[order_id]
        self.quarantined[order_id] = why
        if order.state is OrderState.ASSIGNED and order.vehicle_id in self.vehicles:
            v = self.vehicles[order.vehicle_id]
            self._put_vehicle(replace(v, stops=tuple(s for s in v.stops if s.order_id != order_id)))
            order = self._move(order, OrderState.ACCEPTED, reason="withdrawn: quarantined")
        self._put_order(replace(order, reason=f"quarantined: the dispatcher fails on it ({why})"))
        self._alarm(
            "order-quarantined",
            f"order {order_id} is held out of dispatching: the dispatcher fails on it ({why}); change or cancel it",
            order_id=order_id,
        )

    def _dispatchable(self) -> list[TransportOrder]:
        return [o for o in self.orders.values() if o.id not in self.quarantined]

    def _fleet_now(self) -> tuple[list[VehicleAvailability], frozenset[str]]:
        placed = [v for v in self.vehicles.values() if v.placed]
        occupied = frozenset(v.node for v in placed if v.task is None or v.task.kind is not TaskKind.PARK)
        return [self._availability(v) for v in placed], occupied

    def _dispatch_now(self) -> None:
        if self._solving is not None:
            self._dispatch_wanted = True  # the next run follows once this one is back
            return
        now = self.clock.now()
        self._last_dispatch = now
        self._dispatch_wanted = False
        self.stats.dispatch_runs += 1
        fleet, occupied = self._fleet_now()
        d, orders = self.dispatcher, self._dispatchable()
        if self._pool is None or self.fleet_paused or d.config.solver == "greedy":
            self._apply_decision(d.dispatch(orders, fleet, occupied, self.fleet_paused, now))
            return
        request = d.prepare(orders, d.admitted(fleet, orders), now)
        if request is None:
            self._apply_decision(d.decide(None, None, fleet, occupied))
            return
        try:
            future = self._pool.submit(self._graph_version, self.graph.travel_time, request, d.config)
        except Exception as exc:  # cannot reach the pool at all: this run is solved here
            self._solver_failed(exc)
            self._apply_decision(d.decide(request, d.solve(request), fleet, occupied))
            return
        asked = {t.id: self.orders[t.id] for t in request.tasks}
        self._solving = _Solving(future, request, asked, self._graph_version, now)

    def _solver_failed(self, exc: Exception) -> None:
        self._alarm("dispatch-solver", f"the solver process failed ({exc!r}); solved in the controller instead")

    def _abandon_solve(self) -> None:
        """The worker did not answer in time (stopped, swapping, hung): it is replaced, and
        the run it had is made again at once (here, if the new worker fails too)."""
        assert self._solving is not None and self._pool is not None
        self._solving = None
        self._pool.restart()
        grace = 3 * self.config.dispatch.time_budget_s + self._pool.grace_s
        self._alarm("dispatch-solver", f"the solver process did not answer in {grace:.0f} s; restarted")
        self._dispatch_wanted = True
        self._last_dispatch = -math.inf

    def _collect_solve(self) -> None:
        """A solve from the pool is back: apply what is still true of it. Orders that changed
        meanwhile (cancelled, started, re-prioritised) and vehicles no longer able to work are
        left out of the decision, and another run follows for them; a solve made on a graph
        since changed (lanes closed or opened, a new map) is dropped."""
        solving, self._solving = self._solving, None
        assert solving is not None and self._pool is not None
        try:
            plan = solving.future.result()
        except MissingTravel:
            self._pool.forget()
            self._dispatch_wanted = True
            return
        except Exception as exc:  # the worker died or the solve raised: solved here this once
            self._solver_failed(exc)
            plan = self.dispatcher.solve(solving.request)
        if solving.graph_version != self._graph_version or self.fleet_paused:
            self._dispatch_wanted = True
            return
        changed = {oid for oid, order in solving.orders.items() if self.orders.get(oid) is not order}
        gone = {
            slot.id
            for slot in solving.request.slots
            if (v := self.vehicles.get(slot.id)) is None or not v.placed or not self.dispatcher.can_work(v)
        }
        changed |= {oid for vid in gone for oid in plan.orders_of(vid)}
        request = AssignRequest(
            tuple(t for t in solving.request.tasks if t.id not in changed),
            tuple(slot for slot in solving.request.slots if slot.id not in gone),
        )
        late = self.clock.now() - solving.asked_at  # completion times count from when it was asked
        plan = replace(
            plan,
            routes={
                vid: tuple(stop for stop in stops if stop.order_id not in changed)
                for vid, stops in plan.routes.items()
                if vid not in gone
            },
            completion_s={oid: max(0.0, c - late) for oid, c in plan.completion_s.items() if oid not in changed},
        )
        fleet, occupied = self._fleet_now()
        self._apply_decision(self.dispatcher.decide(request, plan, fleet, occupied))
        if changed or gone:
            self._dispatch_wanted = True

    def _apply_decision(self, decision: DispatchDecision) -> None:
        assigned_to = {oid: vid for vid, queue in decision.queues.items() for oid in queue}
        for oid in decision.considered:
            order = self.orders[oid]
            vid = assigned_to.get(order.id)
            if vid is None and order.state is OrderState.ASSIGNED:
                self._move(order, OrderState.ACCEPTED, reason="withdrawn by dispatcher")
            elif vid is not None and vid != order.vehicle_id:
                moved_from = order.vehicle_id if order.state is OrderState.ASSIGNED else None
                if moved_from is not None:
                    self.stats.reassignments += 1
                why, terms = self._why_assigned(order, vid, decision.queues[vid], decision.plan, moved_from)
                self._move(order, OrderState.ASSIGNED, vehicle_id=vid, reason=why, decision=terms)
        planned = decision.plan.routes if decision.plan is not None else {}
        for vid in decision.queues:
            v = self.vehicles[vid]
            # Its tour stays (its orders are no longer the dispatcher's); the plan follows it.
            stops = (*(s for s in v.stops if self._committed(vid, s)), *planned.get(vid, ()))
            if v.stops != stops:
                self._put_vehicle(replace(v, stops=stops))
            if not stops:
                continue
            if self.vehicles[vid].idle:
                self._next_task(vid)
            elif (task := self.vehicles[vid].task) is not None and task.kind is TaskKind.CHARGE and task.opportunity:
                self._interrupt_charge(vid)
        for vid, v in list(self.vehicles.items()):
            # Loads on board of a vehicle the solve left out (its battery below the reserve,
            # say) after it stopped serving them (a cancelled leg, back in service): delivered.
            if vid not in decision.queues and v.idle and v.available and not v.paused and v.stops:
                self._next_task(vid)
        self._state_unservable()
        for vid, charger_id in decision.charge.items():
            charger = next(c for c in self.map.chargers if c.id == charger_id)
            v = self.vehicles[vid]
            if not v.idle or v.stops:
                continue  # it has work since the decision was made
            opportunity = v.battery >= self.config.dispatch.charge_below
            task = Task(TaskKind.CHARGE, charger.node, place_id=charger_id, opportunity=opportunity)
            self._put_vehicle(replace(v, task=task))
            self._drive_to(vid, charger.node)
        for vid, spot_id in decision.park.items():
            if not self.vehicles[vid].idle or self.vehicles[vid].stops:
                continue
            spot = next(p for p in self.map.parking if p.id == spot_id)
            self._put_vehicle(replace(self.vehicles[vid], task=Task(TaskKind.PARK, spot.node, place_id=spot_id)))
            self._drive_to(vid, spot.node)

    def _interrupt_charge(self, vehicle_id: str) -> None:
        """An order for a vehicle charging in idle time: on its way to the charger it turns to
        the order at once; at the charger the charge is stopped first (the order starts when
        the vehicle reports the charge ended)."""
        v = self.vehicles[vehicle_id]
        assert v.task is not None
        if v.task.phase is TaskPhase.TRAVEL:
            self._put_vehicle(replace(v, task=None))
            self._next_task(vehicle_id)
        elif vehicle_id not in self._stopping_charge:
            self._stopping_charge.add(vehicle_id)
            self._outbox.append(StopCharging(vehicle_id))

    def _state_unservable(self) -> None:
        """An order no vehicle of the fleet (on the map, in service) can carry is not dropped: it
        waits, says so, and raises one alarm; when such a vehicle comes, it is dispatched."""
        types = self.map.vehicle_type_by_id
        carried = set().union(
            *(types[v.type_id].load_types for v in self.vehicles.values() if v.placed and v.in_service)
        )
        for order in self.open_orders():
            if order.state is not OrderState.ACCEPTED:
                continue
            if order.load_type in carried:
                self._unservable.discard(order.id)
            elif order.id not in self._unservable:
                self._unservable.add(order.id)
                why = f"no vehicle in the fleet can carry '{order.load_type}': it waits for one"
                self._put_order(replace(order, reason=why))
                self._alarm("unservable-order", f"order {order.id}: {why}", order_id=order.id)

    def _why_assigned(
        self,
        order: TransportOrder,
        vehicle_id: str,
        queue: tuple[str, ...],
        plan: AssignmentPlan | None,
        moved_from: str | None,
    ) -> tuple[str, Decision | None]:
        """The decision in words, for the order's history (expected finish, place in the queue,
        due time, why it moved if it did), and its terms in the plan's objective."""
        parts = [f"assigned to {vehicle_id}"]
        done_in = plan.completion_s.get(order.id) if plan is not None else None
        terms = None
        if done_in is not None:
            now = self.clock.now()
            place = queue.index(order.id) + 1 if order.id in queue else 1
            parts.append(f": done in about {done_in / 60:.1f} min, {_ordinal(place)} in its queue")
            late = 0.0
            if order.due_at is not None:
                slack = order.due_at - (now + done_in)
                late = max(0.0, -slack)
                parts.append(f", {slack / 60:.1f} min before due" if slack >= 0 else f", {-slack / 60:.1f} min late")
            weight = 1 + self.dispatcher.effective_priority(order, now)
            objective = weight * (done_in + late * LATENESS_PER_COMPLETION)
            terms = Decision(
                vehicle_id, now, round(done_in, 1), place, round(late, 1), weight, round(objective, 1), moved_from
            )
        if moved_from is not None:
            margin = self.config.dispatch.keep_margin
            parts.append(f"; moved from {moved_from}: the new plan is better by more than {margin:.0%}")
        return "".join(parts), terms

    def _availability(self, v: Vehicle) -> VehicleAvailability:
        """Where and when the vehicle can start new work: after its tour (the order it serves
        now and the stops committed with it), or where its released path ends."""
        stop = self.traffic.released_end(v.id)
        released, _ = self.traffic.remaining(v.id)
        # Released lanes are driven even if closed since.
        to_stop = self.full_graph.path_time([v.node, *released]) if released else 0.0
        task = v.task
        if task is None or task.kind is not TaskKind.ORDER or task.order_id is None:
            return VehicleAvailability(v, stop, to_stop, stop)
        order = self.orders[task.order_id]
        kind = StopKind.PICKUP if order.state in (OrderState.TO_PICKUP, OrderState.LOADING) else StopKind.DROPOFF
        now = self.clock.now()

        def ready_in(o: TransportOrder, k: StopKind) -> float:
            """How long from now the load of a pick-up still takes to be ready (0 at a drop-off)."""
            return max(0.0, o.ready_at - now) if k is StopKind.PICKUP and o.ready_at is not None else 0.0

        there = order.state in (OrderState.LOADING, OrderState.UNLOADING)
        visits = [(self._station(order, kind), there, 0.0 if there else ready_in(order, kind))]
        for s in v.stops:
            if not self._committed(v.id, s):
                break  # the tour ends where the dispatcher's plan begins
            o = self.orders[s.order_id]
            visits.append((self._station(o, s.kind), False, ready_in(o, s.kind)))
        remaining = math.inf
        # Legs that closures cut off are taken as if open (the vehicle waits at the closure):
        # the estimate stays finite.
        for g in (self.graph, self.full_graph):
            remaining, at = 0.0, v.node
            for station, here, ready in visits:
                remaining = max(remaining + (0.0 if here else g.time(at, station.node)), ready)
                remaining += station.service_time_s
                at = station.node
            if math.isfinite(remaining):
                break
        return VehicleAvailability(v, visits[-1][0].node, remaining, stop)

    def _next_task(self, vehicle_id: str) -> None:
        """Drive a vehicle without a task to its next stop, or leave it for the park phase. At the
        first pick-up of a tour, every order picked up before the vehicle is empty again is
        committed to it (to pick-up): the dispatcher plans from the tour's end."""
        v = self.vehicles[vehicle_id]
        while v.stops:
            stop, v = v.stops[0], replace(v, stops=v.stops[1:])
            order = self.orders[stop.order_id]
            if order.vehicle_id != v.id:
                continue
            if stop.kind is StopKind.PICKUP and order.state is OrderState.ASSIGNED:
                for oid in self._tour(len(v.loads), (stop, *v.stops)):
                    if (o := self.orders[oid]).state is OrderState.ASSIGNED and o.vehicle_id == v.id:
                        self._move(o, OrderState.TO_PICKUP, vehicle_id=v.id)
                order = self.orders[order.id]
            wanted = OrderState.TO_PICKUP if stop.kind is StopKind.PICKUP else OrderState.TO_DROPOFF
            if order.state is not wanted:
                continue
            goal = self._station(order, stop.kind).node
            self._put_vehicle(replace(v, task=Task(TaskKind.ORDER, goal, order_id=order.id)))
            self._drive_to(v.id, goal)
            return
        self._put_vehicle(v)
        self._dispatch_wanted = True

    def _committed(self, vehicle_id: str, stop: Stop) -> bool:
        """Whether the stop is of an order committed to the vehicle (in its tour), not just assigned."""
        order = self.orders[stop.order_id]
        return order.vehicle_id == vehicle_id and order.state.started

    def _station(self, order: TransportOrder, kind: StopKind) -> Station:
        """Where the order's pick-up or drop-off is."""
        return self.map.station_by_id[order.pickup if kind is StopKind.PICKUP else order.dropoff]

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

    # ---- driving ----------------------------------------------------------------------------

    def _wake_turn_waiters(self) -> None:
        """Vehicles gave up their turns (re-routed, stopped): whoever waited for them may go."""
        while self.traffic.turns_dropped:
            self._release_waiting_on(self.traffic.turns_dropped.pop())

    def _release_waiting_on(self, vehicle_id: str) -> None:
        """`vehicle_id` freed something: whoever waited on it may move on."""
        for other, reason in list(self.traffic.waiting.items()):
            if reason.holder == vehicle_id:
                self._release(other)

    def _parked_at(self, node: str) -> Task | None:
        """The task of a vehicle standing on `node`: parked there, if `node` is a parking spot."""
        spot = next((p for p in self.map.parking if p.node == node), None)
        return Task(TaskKind.PARK, node, TaskPhase.ACTION, place_id=spot.id) if spot else None

    def _drive_to(self, vehicle_id: str, goal: str) -> None:
        with self._isolated(vehicle_id, f"planning its path to {goal}"):
            self._set_route(vehicle_id, goal)
            self._release(vehicle_id)
            if self.traffic.at_goal(vehicle_id):
                self._arrived(vehicle_id)

    def _release(self, vehicle_id: str) -> None:
        if self._hold_until is not None:
            return
        with self._isolated(vehicle_id, "releasing its path"):
            nodes = self.traffic.release(vehicle_id)
            if nodes:
                self._outbox.append(DriveNodes(vehicle_id, tuple(nodes)))

    def _arrived(self, vehicle_id: str) -> None:
        v = self.vehicles[vehicle_id]
        task = v.task
        if task is None or task.phase is not TaskPhase.TRAVEL or v.node != task.goal:
            return
        acting = replace(task, phase=TaskPhase.ACTION)
        self._put_vehicle(replace(v, task=acting))
        if task.kind is TaskKind.PARK:
            return
        if task.kind is TaskKind.CHARGE:
            assert task.place_id is not None
            until = self.config.dispatch.charge_until
            self._outbox.append(StartAction(v.id, ActionKind.CHARGE, task.place_id, until_battery=until))
            return
        assert task.order_id is not None
        order = self.orders[task.order_id]
        if order.state is OrderState.TO_PICKUP and order.ready_at is not None and order.ready_at > self.clock.now():
            self._awaiting_load[v.id] = order.id  # the tick starts the pick when the load is ready
        elif order.state is OrderState.TO_PICKUP:
            self._start_pick(v.id, order)
        elif order.state is OrderState.TO_DROPOFF:
            self._move(order, OrderState.UNLOADING)
            self._outbox.append(StartAction(v.id, ActionKind.DROP, order.dropoff, order.id))

    def _start_pick(self, vehicle_id: str, order: TransportOrder) -> None:
        self._move(order, OrderState.LOADING)
        self._outbox.append(StartAction(vehicle_id, ActionKind.PICK, order.pickup, order.id))

    def _pick_ready_loads(self, now: float) -> None:
        """Vehicles waiting at a pick-up for a load whose time has come pick it up; a wait whose
        order or task changed meanwhile (cancelled, handed back) is over."""
        for vehicle_id, oid in list(self._awaiting_load.items()):
            order, task = self.orders.get(oid), self.vehicles[vehicle_id].task
            still = (
                order is not None
                and order.state is OrderState.TO_PICKUP
                and order.vehicle_id == vehicle_id
                and task is not None
                and task.order_id == oid
                and task.phase is TaskPhase.ACTION
            )
            if not still:
                del self._awaiting_load[vehicle_id]
            elif order is not None and now >= (order.ready_at or 0.0):
                del self._awaiting_load[vehicle_id]
                self._start_pick(vehicle_id, order)

    # ---- state changes ----------------------------------------------------------------------

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
