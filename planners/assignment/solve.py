"""OR-Tools pickup and delivery with capacities, time windows, priorities and battery: the solve
that keeps the standing plan unless a better one wins by the keep margin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from planners.assignment.evaluate import _within_energy, evaluate_routes
from planners.assignment.greedy import greedy_plan
from planners.assignment.model import (
    _COMPLETION_WEIGHT,
    _ENERGY_SCALE,
    _LATENESS_WEIGHT,
    _SCALE,
    _UNREACHABLE,
    AssignmentPlan,
    OrderTask,
    Stop,
    StopKind,
    TravelMatrix,
    VehicleSlot,
)


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
