"""Assignment of transport orders to vehicles: OR-Tools pickup-and-delivery, a greedy baseline,
an evaluator and a validator.

Battery is a resource of the model: a vehicle with an `EnergyUse` may take only routes whose
energy, including the drive from its last drop-off to the nearest charger, fits in its
`energy_wh` (what it has above its reserve). The greedy baseline and the validator count energy
the same way (`route_energy`: a load draws its extra for every leg it is on board); the solver's
energy dimension counts it over the direct leg from pick-up to drop-off, exact with one load at
a time, and its routes are cut back to fit `route_energy` (`_within_energy`).

Objective: the priority-weighted sum of order completion times (drop-off service finished),
counted from now. Travel adds a small tie-breaking term in the solver. Every plan the solver
returns is warm-started from the greedy nearest-vehicle plan and then compared with it by
`evaluate_routes`, so the returned plan is never worse than the baseline.

Times are seconds relative to "now"; the solver works in deciseconds (integers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from maps import VehicleType

_SCALE = 10  # solver time unit: 0.1 s
_UNREACHABLE = 10**7  # solver cost standing in for "no path", in solver units
_COMPLETION_WEIGHT = 10  # completion time dominates travel in the solver objective
_LATENESS_WEIGHT = 100  # per solver unit late at pick-up w.r.t. the due time
_ENERGY_SCALE = 10  # solver energy unit: 0.1 Wh
LATENESS_PER_COMPLETION = _LATENESS_WEIGHT / _COMPLETION_WEIGHT  # a second late weighs as this many of completion


class StopKind(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


@dataclass(frozen=True, slots=True)
class OrderTask:
    """One order as the planner sees it: node indices, service times, priority, an optional due
    time at the drop-off (soft: lateness is weighed) and the time its load is ready at the
    pick-up (hard: a vehicle there earlier waits)."""

    id: str
    pickup: int
    dropoff: int
    pickup_service_s: float = 0.0
    dropoff_service_s: float = 0.0
    priority: int = 0
    due_in_s: float | None = None
    ready_in_s: float = 0.0  # the load may not be picked up before
    allowed_vehicles: frozenset[str] | None = None  # None: any vehicle may serve it
    current_vehicle: str | None = None  # the vehicle it is assigned to now, if any

    def __post_init__(self) -> None:
        if self.pickup_service_s < 0 or self.dropoff_service_s < 0:
            raise ValueError(f"order {self.id}: negative service time")
        if self.priority < 0:
            raise ValueError(f"order {self.id}: priority must be >= 0")
        if not self.ready_in_s >= 0:  # NaN too
            raise ValueError(f"order {self.id}: ready_in_s must be >= 0")

    @property
    def weight(self) -> int:
        return 1 + self.priority

    @property
    def stops(self) -> tuple[Stop, Stop]:
        """Its pick-up and drop-off, served one after the other."""
        return Stop(self.id, StopKind.PICKUP), Stop(self.id, StopKind.DROPOFF)


@dataclass(frozen=True, eq=False)
class EnergyUse:
    """How a vehicle type uses its battery, in Wh, on a graph whose travel times it is given.

    Driving draws `drive_w` (top speed times consumption per metre: lanes are no faster, so
    travel time bounds distance and the estimate errs on the safe side), plus `load_w` per load
    on board while driving (`route_energy`). `idle_w` is drawn all the time,
    driving, serving or waiting. `to_charger_s[n]`: travel time from node n to the nearest
    charger (inf: none reachable)."""

    drive_w: float
    load_w: float
    idle_w: float
    to_charger_s: npt.NDArray[np.float64]

    def driving(self, seconds: float) -> float:
        return seconds * (self.drive_w + self.idle_w) / 3600

    def standing(self, seconds: float) -> float:
        return seconds * self.idle_w / 3600

    def loaded(self, seconds: float) -> float:
        return seconds * self.load_w / 3600

    def to_charger(self, node: int) -> float:
        return self.driving(float(self.to_charger_s[node]))


def energy_use_for(vtype: VehicleType, travel: TravelMatrix, chargers: Sequence[int]) -> EnergyUse:
    """The energy model of a vehicle type on a graph with the given charger nodes."""
    to_charger = travel[:, list(chargers)].min(axis=1) if chargers else np.full(len(travel), np.inf)
    return EnergyUse(
        drive_w=vtype.max_speed * vtype.consumption_wh_per_m * 3600,
        load_w=vtype.max_speed * vtype.load_consumption_wh_per_m * 3600,
        idle_w=vtype.idle_power_w,
        to_charger_s=to_charger,
    )


@dataclass(frozen=True, slots=True)
class VehicleSlot:
    """A vehicle free to take work at node `node` in `available_in_s` seconds, carrying up to
    `capacity` loads; with `energy`, it may use `energy_wh` on its route and the drive to a
    charger after it."""

    id: str
    node: int
    available_in_s: float = 0.0
    capacity: int = 1
    energy_wh: float = float("inf")
    energy: EnergyUse | None = None

    def __post_init__(self) -> None:
        if self.available_in_s < 0:
            raise ValueError(f"vehicle {self.id}: available_in_s must be >= 0")
        if self.capacity < 1:
            raise ValueError(f"vehicle {self.id}: capacity must be >= 1")


@dataclass(frozen=True, slots=True)
class Stop:
    order_id: str
    kind: StopKind


@dataclass(frozen=True)
class AssignmentPlan:
    """Routes of stops per vehicle, completion time per served order, and the weighted objective."""

    routes: Mapping[str, tuple[Stop, ...]]
    completion_s: Mapping[str, float]
    objective: float
    unassigned: tuple[str, ...] = ()
    solver: str = "greedy"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def orders_of(self, vehicle_id: str) -> tuple[str, ...]:
        """Orders of a vehicle in the order their pick-ups happen."""
        return tuple(s.order_id for s in self.routes.get(vehicle_id, ()) if s.kind is StopKind.PICKUP)


TravelMatrix = npt.NDArray[np.float64]


def _timed_stops(
    vehicle: VehicleSlot, stops: Sequence[Stop], by_id: Mapping[str, OrderTask], travel: TravelMatrix
) -> Iterator[tuple[Stop, OrderTask, float, float, float]]:
    """The stops of a route driven back to back from when the vehicle is free: per stop, the
    seconds driven to it, the seconds standing there (the service, and at a pick-up reached
    early, until the load is ready) and when it leaves."""
    t, at = vehicle.available_in_s, vehicle.node
    for stop in stops:
        order = by_id[stop.order_id]
        pick = stop.kind is StopKind.PICKUP
        node = order.pickup if pick else order.dropoff
        leg = float(travel[at, node])
        t += leg
        stand = max(0.0, order.ready_in_s - t) + order.pickup_service_s if pick else order.dropoff_service_s
        t += stand
        at = node
        yield stop, order, leg, stand, t


def evaluate_routes(
    routes: Mapping[str, Sequence[Stop]],
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix,
) -> tuple[dict[str, float], float]:
    """Completion time per order and the objective, for routes driven back to back (waiting at a
    pick-up reached before its load is ready): the
    priority-weighted sum of completion times, plus lateness past each due time weighted as the
    solver weighs it."""
    by_id = {o.id: o for o in orders}
    completion: dict[str, float] = {}
    for vehicle in vehicles:
        for stop, order, _, _, done in _timed_stops(vehicle, routes.get(vehicle.id, ()), by_id, travel):
            if stop.kind is StopKind.DROPOFF:
                completion[order.id] = done
    objective = 0.0
    for oid, done in completion.items():
        order = by_id[oid]
        late = max(0.0, done - order.due_in_s) if order.due_in_s is not None else 0.0
        # The solver's weights, in its units: completion time plus lateness at the stiffer rate.
        objective += order.weight * (done + late * LATENESS_PER_COMPLETION)
    return completion, objective


def route_energy(
    vehicle: VehicleSlot,
    stops: Sequence[Stop],
    orders: Sequence[OrderTask],
    travel: TravelMatrix,
    to_charger: bool = True,
) -> float:
    """Wh the vehicle uses on its route (driving, loads on board, standing for services and for
    loads not ready yet) and, with `to_charger`, on the drive from the last drop-off to the
    nearest charger (0 for an empty route, inf when a leg or the charger cannot be reached); 0
    without an energy model."""
    use = vehicle.energy
    if use is None or not stops:
        return 0.0
    by_id = {o.id: o for o in orders}
    wh, on_board, at = 0.0, 0, vehicle.node
    for stop, order, leg, stand, _ in _timed_stops(vehicle, stops, by_id, travel):
        wh += use.driving(leg) + on_board * use.loaded(leg) + use.standing(stand)  # loads on board all the leg
        on_board += 1 if stop.kind is StopKind.PICKUP else -1
        at = order.pickup if stop.kind is StopKind.PICKUP else order.dropoff
    return wh + use.to_charger(at) if to_charger else wh


def _within_energy(
    routes: Mapping[str, tuple[Stop, ...]],
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix,
) -> dict[str, tuple[Stop, ...]]:
    """Routes cut back, order by order from the last picked up, until `route_energy` fits. The
    solver's energy dimension counts a load over the direct leg from its pick-up to its drop-off
    (a transit cannot depend on what is on board), which is exact with one load at a time and
    too little when a vehicle with several on board drives between stations: this makes the
    plan true to the count the validator uses."""
    by_vehicle = {v.id: v for v in vehicles}
    fitted = {}
    for vid, stops in routes.items():
        v = by_vehicle.get(vid)
        kept = list(stops)
        while v is not None and kept and route_energy(v, kept, orders, travel) > v.energy_wh + 1e-6:
            last = next(s.order_id for s in reversed(kept) if s.kind is StopKind.PICKUP)
            kept = [s for s in kept if s.order_id != last]
        fitted[vid] = tuple(kept)
    return fitted


def validate_plan(
    plan: AssignmentPlan,
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix | None = None,
) -> list[str]:
    """Problems of a plan: orders served twice or never, drop-off before pick-up or on another vehicle,
    capacity exceeded, vehicles not allowed for an order, unknown vehicles or orders, and (given
    the travel times) a route that takes more energy than its vehicle has above its reserve,
    counting the drive to a charger after it, and an order finished sooner than its load is
    ready plus its pick-up, drive and drop-off. Empty when valid."""
    problems: list[str] = []
    known_orders = {o.id for o in orders}
    if travel is not None:
        for order in orders:
            done = plan.completion_s.get(order.id)
            soonest = _finish(order, order.ready_in_s, travel)
            if done is not None and done < soonest - 1e-6:
                problems.append(
                    f"order {order.id}: finished at {done:.1f} s, before its load is ready"
                    f" ({order.ready_in_s:.1f} s) plus pick-up, drive and drop-off ({soonest:.1f} s)"
                )
        for vehicle in vehicles:
            stops = plan.routes.get(vehicle.id, ())
            if vehicle.energy is not None and all(s.order_id in known_orders for s in stops):
                need = route_energy(vehicle, stops, orders, travel)
                if need > vehicle.energy_wh + 1e-6:
                    problems.append(
                        f"vehicle {vehicle.id}: route needs {need:.1f} Wh with the drive to a charger,"
                        f" {vehicle.energy_wh:.1f} Wh above its reserve"
                    )
    allowed = {o.id: o.allowed_vehicles for o in orders}
    capacity = {v.id: v.capacity for v in vehicles}
    picked_by: dict[str, str] = {}
    dropped: set[str] = set()
    for vid, stops in plan.routes.items():
        if vid not in capacity:
            problems.append(f"unknown vehicle {vid}")
            continue
        on_board: set[str] = set()
        for stop in stops:
            if stop.order_id not in known_orders:
                problems.append(f"vehicle {vid}: unknown order {stop.order_id}")
            elif stop.kind is StopKind.PICKUP:
                if stop.order_id in picked_by:
                    problems.append(f"order {stop.order_id}: picked up twice")
                allowed_here = allowed[stop.order_id]
                if allowed_here is not None and vid not in allowed_here:
                    problems.append(f"order {stop.order_id}: served by {vid}, which may not carry it")
                picked_by[stop.order_id] = vid
                on_board.add(stop.order_id)
                if len(on_board) > capacity[vid]:
                    problems.append(f"vehicle {vid}: {len(on_board)} loads exceed capacity {capacity[vid]}")
            else:
                if stop.order_id not in on_board:
                    problems.append(f"order {stop.order_id}: dropped off by {vid} without being on board")
                on_board.discard(stop.order_id)
                dropped.add(stop.order_id)
        for left in sorted(on_board):
            problems.append(f"order {left}: picked up by {vid} but never dropped off")
    served = set(picked_by) | set(plan.unassigned)
    for oid in sorted(known_orders - served):
        problems.append(f"order {oid}: neither served nor reported unassigned")
    for oid in sorted(set(plan.unassigned) & set(picked_by)):
        problems.append(f"order {oid}: reported unassigned but served")
    return problems


def _finish(order: OrderTask, arrive: float, travel: TravelMatrix) -> float:
    """When an order is delivered if its vehicle reaches the pick-up at `arrive`, one at a time."""
    return (
        max(arrive, order.ready_in_s)
        + order.pickup_service_s
        + float(travel[order.pickup, order.dropoff])
        + order.dropoff_service_s
    )


def greedy_plan(
    orders: Sequence[OrderTask], vehicles: Sequence[VehicleSlot], travel: TravelMatrix, keep_current: bool = False
) -> AssignmentPlan:
    """Baseline: orders by priority then arrival, each to the vehicle that can pick it up first,
    served one at a time, as far as the vehicle's energy goes. With `keep_current`, orders stay
    with the vehicle they are assigned to (in the sequence given, while its energy lasts) and
    only the others are placed: the plan as it stands."""
    free_at = {v.id: (v.available_in_s, v.node) for v in vehicles}
    used = {v.id: 0.0 for v in vehicles}
    slot = {v.id: v for v in vehicles}
    routes: dict[str, list[Stop]] = {v.id: [] for v in vehicles}
    unassigned = []
    placed: set[str] = set()

    def fits(vid: str, order: OrderTask) -> float | None:
        """Energy used after adding the order, or None when the vehicle could not then reach a charger."""
        v, (free, at) = slot[vid], free_at[vid]
        if v.energy is None:
            return 0.0
        leg = replace(v, node=at, available_in_s=free)
        after = used[vid] + route_energy(leg, order.stops, [order], travel, to_charger=False)
        return after if after + v.energy.to_charger(order.dropoff) <= v.energy_wh else None

    def place(vid: str, order: OrderTask, arrive: float, energy: float) -> None:
        free_at[vid] = (_finish(order, arrive, travel), order.dropoff)
        used[vid] = energy
        routes[vid].extend(order.stops)
        placed.add(order.id)

    if keep_current:
        for order in orders:
            vid = order.current_vehicle
            if vid is None or vid not in free_at or (energy := fits(vid, order)) is None:
                continue
            t, at = free_at[vid]
            place(vid, order, t + float(travel[at, order.pickup]), energy)
    ranked = sorted(enumerate(orders), key=lambda p: (-p[1].priority, p[0]))
    for _, order in ranked:
        if order.id in placed:
            continue
        best: tuple[float, str, float] | None = None
        for v in vehicles:
            if order.allowed_vehicles is not None and v.id not in order.allowed_vehicles:
                continue
            t, at = free_at[v.id]
            arrive = t + float(travel[at, order.pickup])
            reachable = np.isfinite(arrive) and np.isfinite(travel[order.pickup, order.dropoff])
            # Reaching it sooner than the load is ready gains nothing: ties go to the first vehicle.
            arrive = max(arrive, order.ready_in_s)
            if reachable and (best is None or arrive < best[0]) and (energy := fits(v.id, order)) is not None:
                best = (arrive, v.id, energy)
        if best is None:
            unassigned.append(order.id)
            continue
        place(best[1], order, best[0], best[2])
    frozen = {vid: tuple(stops) for vid, stops in routes.items()}
    completion, objective = evaluate_routes(frozen, orders, vehicles, travel)
    return AssignmentPlan(frozen, completion, objective, tuple(unassigned), solver="greedy")


def solve_assignment(
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix,
    time_budget_s: float = 1.0,
    solution_limit: int | None = None,
    keep_margin: float = 0.0,
) -> AssignmentPlan:
    """Solve with OR-Tools' routing solver within the time budget.

    The search is greedy descent from the better of the greedy plan and the plan as it stands
    (orders kept on their `current_vehicle`); it is deterministic whenever it ends before the
    time budget (set `solution_limit` to bound the work independently of the machine).

    When orders stand on vehicles, the plan that moves nothing is optimised first (assigned
    orders pinned to their vehicles, free to change place in its queue; new orders anywhere),
    with half the budget; a plan that moves orders replaces it only if it serves as many orders
    and its objective is lower by more than `keep_margin` (a fraction). Comparing like with
    like matters: against the plan as it stands, with new orders merely appended, nearly every
    re-solve looks better by the margin, and orders shuffle between vehicles at every run.
    """
    fresh = greedy_plan(orders, vehicles, travel)
    if not orders or not vehicles:
        return fresh
    standing = greedy_plan(orders, vehicles, travel, keep_current=True)
    start = standing if standing.objective <= fresh.objective else fresh
    # Standing orders are those the plan as it stands could keep (a vehicle's energy may not
    # last for all of its queue): the others are placed anew like new orders.
    standing_on = {
        o.id: o.current_vehicle
        for o in orders
        if o.current_vehicle is not None and o.id in standing.orders_of(o.current_vehicle)
    }
    if standing_on:
        half = None if solution_limit is None else max(1, solution_limit // 2)
        pinnable = [o if o.id in standing_on else replace(o, current_vehicle=None) for o in orders]
        kept = _improve(pinnable, vehicles, travel, standing, time_budget_s / 2, half, pinned=True)
        free = _improve(orders, vehicles, travel, _better(kept, start), time_budget_s / 2, half)
        if len(free.unassigned) < len(kept.unassigned):
            return free
        moves = any(oid not in free.orders_of(vid) for oid, vid in standing_on.items())
        if moves and free.objective > kept.objective * (1 - keep_margin):
            return replace(kept, solver="kept")
        return free
    return _improve(orders, vehicles, travel, start, time_budget_s, solution_limit)


def _better(a: AssignmentPlan, b: AssignmentPlan) -> AssignmentPlan:
    """The plan serving more orders, then the one with the lower objective."""
    return min((a, b), key=lambda p: (len(p.unassigned), p.objective))


def _improve(
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix,
    start: AssignmentPlan,
    time_budget_s: float,
    solution_limit: int | None,
    pinned: bool = False,
) -> AssignmentPlan:
    """OR-Tools from `start`; `start` itself when the search finds nothing better."""
    routes = _RoutingModel(orders, vehicles, travel, pinned).solve(start, time_budget_s, solution_limit)
    if routes is None:
        return start
    routes = _within_energy(routes, orders, vehicles, travel)
    completion, objective = evaluate_routes(routes, orders, vehicles, travel)
    unassigned = tuple(o.id for o in orders if o.id not in completion)
    solved = AssignmentPlan(routes, completion, objective, unassigned, solver="or-tools")
    return solved if _better(solved, start) is solved else start


class _RoutingModel:
    """Routing nodes: 0..V-1 vehicle starts, V the shared free end, then pick-up and drop-off per order."""

    def __init__(
        self, orders: Sequence[OrderTask], vehicles: Sequence[VehicleSlot], travel: TravelMatrix, pinned: bool = False
    ) -> None:
        self.orders, self.vehicles, self.pinned = orders, vehicles, pinned
        n_v = len(vehicles)
        self.end = n_v
        graph_node = [v.node for v in vehicles] + [-1]
        service = [0.0] * (n_v + 1)
        for o in orders:
            graph_node += [o.pickup, o.dropoff]
            service += [o.pickup_service_s, o.dropoff_service_s]
        gn = np.array(graph_node)
        size = len(gn)
        real = gn >= 0
        times = np.zeros((size, size))
        sub = travel[np.ix_(gn[real], gn[real])]
        block = np.where(np.isfinite(sub), sub, _UNREACHABLE / _SCALE)
        times[np.ix_(real, real)] = block
        times += np.array(service)[:, None]
        times[:, self.end] = 0  # finishing is free: vehicles end where their last drop-off is
        self.transit = np.rint(times * _SCALE).astype(np.int64)
        self._times_s, self._service_s, self._graph_node, self._travel = times, service, gn, travel
        self.manager = pywrapcp.RoutingIndexManager(size, n_v, list(range(n_v)), [self.end] * n_v)
        self.routing = pywrapcp.RoutingModel(self.manager)
        self._build()

    def pickup_node(self, i: int) -> int:
        return self.end + 1 + 2 * i

    def _build(self) -> None:
        routing, manager = self.routing, self.manager
        transit = routing.RegisterTransitMatrix(self.transit.tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(transit)
        horizon = int(self.transit.max()) * (2 * len(self.orders) + 2) + _SCALE * int(
            max(v.available_in_s for v in self.vehicles) + max((o.ready_in_s for o in self.orders), default=0) + 1
        )
        # Waiting (slack) only where a load is not ready yet: without it the solver's times are
        # the back-to-back times evaluate_routes counts.
        waits = any(o.ready_in_s > 0 for o in self.orders)
        routing.AddDimension(transit, horizon if waits else 0, horizon, False, "time")
        time = routing.GetDimensionOrDie("time")
        demand = [0] * (self.end + 1)
        for _ in self.orders:
            demand += [1, -1]
        load = routing.RegisterUnaryTransitVector(demand)
        routing.AddDimensionWithVehicleCapacity(load, 0, [v.capacity for v in self.vehicles], True, "load")
        for k, vehicle in enumerate(self.vehicles):
            start = round(vehicle.available_in_s * _SCALE)
            time.CumulVar(routing.Start(k)).SetRange(start, start)
        self._add_energy()
        unserved_penalty = 100 * horizon
        for i, order in enumerate(self.orders):
            pick = manager.NodeToIndex(self.pickup_node(i))
            drop = manager.NodeToIndex(self.pickup_node(i) + 1)
            routing.AddPickupAndDelivery(pick, drop)
            routing.solver().Add(routing.VehicleVar(pick) == routing.VehicleVar(drop))
            routing.solver().Add(time.CumulVar(pick) <= time.CumulVar(drop))
            routing.AddDisjunction([pick, drop], unserved_penalty, 2)
            allowed_ids = order.allowed_vehicles
            if self.pinned and any(v.id == order.current_vehicle for v in self.vehicles):
                allowed_ids = frozenset({order.current_vehicle or ""})
            if allowed_ids is not None:
                allowed = [k for k, v in enumerate(self.vehicles) if v.id in allowed_ids]
                # -1 keeps "unperformed" possible; the Span-taking SetAllowedVehiclesForIndex is not wrapped.
                routing.VehicleVar(pick).SetValues([-1, *allowed])
                routing.VehicleVar(drop).SetValues([-1, *allowed])
            time.SetCumulVarSoftUpperBound(drop, 0, _COMPLETION_WEIGHT * order.weight)
            if order.ready_in_s > 0:
                time.CumulVar(pick).SetMin(math.ceil(order.ready_in_s * _SCALE))
            if order.due_in_s is not None:
                leg = self.transit[self.pickup_node(i), self.pickup_node(i) + 1]
                latest_pick = max(0, int(order.due_in_s * _SCALE) - int(leg))
                time.SetCumulVarSoftUpperBound(pick, latest_pick, _LATENESS_WEIGHT * order.weight)

    def _add_energy(self) -> None:
        """Battery as a dimension: energy per arc (drive, loaded leg, service), the drive to the
        nearest charger on the arc into the end, capacity what each vehicle has above its reserve."""
        uses = {id(v.energy): v.energy for v in self.vehicles if v.energy is not None}
        if not uses:
            return
        drive_s = self._times_s - np.array(self._service_s)[:, None]
        pick_leg = np.zeros(len(self._graph_node))
        for i, o in enumerate(self.orders):
            pick_leg[self.pickup_node(i)] = min(float(self._travel[o.pickup, o.dropoff]), _UNREACHABLE / _SCALE)
        evaluators: dict[int, int] = {}
        for key, use in uses.items():
            wh = (
                drive_s * (use.drive_w + use.idle_w) / 3600
                + np.array([use.standing(t) for t in self._service_s])[:, None]
                + np.array([use.loaded(t) for t in pick_leg])[:, None]
            )
            to_charger = np.minimum(use.to_charger_s, _UNREACHABLE / _SCALE)
            wh[:, self.end] = 0.0  # an empty route costs nothing; a drop-off's arc into the end reaches a charger
            for node in range(self.end + 2, len(self._graph_node), 2):
                wh[node, self.end] = use.driving(float(to_charger[self._graph_node[node]]))
            matrix = np.rint(wh * _ENERGY_SCALE).astype(np.int64)
            evaluators[key] = self.routing.RegisterTransitMatrix(matrix.tolist())
        unlimited = _UNREACHABLE * 1000

        def capacity(v: VehicleSlot) -> int:
            if v.energy is None or not np.isfinite(v.energy_wh):
                return unlimited
            return max(0, int(v.energy_wh * _ENERGY_SCALE))

        no_use = self.routing.RegisterTransitMatrix([[0] * len(self._graph_node)] * len(self._graph_node))
        self.routing.AddDimensionWithVehicleTransitAndCapacity(
            [evaluators[id(v.energy)] if v.energy is not None else no_use for v in self.vehicles],
            0,
            [
                max(0, int(v.energy_wh * _ENERGY_SCALE))
                if v.energy is not None and np.isfinite(v.energy_wh)
                else unlimited
                for v in self.vehicles
            ],
            True,
            "energy",
        )

    def solve(
        self, warm: AssignmentPlan, time_budget_s: float, solution_limit: int | None
    ) -> dict[str, tuple[Stop, ...]] | None:
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
        params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
        params.time_limit.FromMilliseconds(max(1, int(time_budget_s * 1000)))
        if solution_limit is not None:
            params.solution_limit = solution_limit
        index_of = {o.id: i for i, o in enumerate(self.orders)}
        initial_routes = []
        for vehicle in self.vehicles:
            route = []
            for stop in warm.routes.get(vehicle.id, ()):
                node = self.pickup_node(index_of[stop.order_id]) + (0 if stop.kind is StopKind.PICKUP else 1)
                route.append(self.manager.NodeToIndex(node))
            initial_routes.append(route)
        initial = self.routing.ReadAssignmentFromRoutes(initial_routes, True)
        if initial is not None:
            solution = self.routing.SolveFromAssignmentWithParameters(initial, params)
        else:
            solution = self.routing.SolveWithParameters(params)
        if solution is None:
            return None
        routes: dict[str, tuple[Stop, ...]] = {}
        for k, vehicle in enumerate(self.vehicles):
            stops = []
            index = self.routing.Start(k)
            while not self.routing.IsEnd(index):
                node = self.manager.IndexToNode(index)
                if node > self.end:
                    i, is_drop = divmod(node - self.end - 1, 2)
                    stops.append(Stop(self.orders[i].id, StopKind.DROPOFF if is_drop else StopKind.PICKUP))
                index = solution.Value(self.routing.NextVar(index))
            routes[vehicle.id] = tuple(stops)
        return routes
