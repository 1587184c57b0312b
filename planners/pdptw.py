"""Pickup and delivery with time windows (PDPTW) on OR-Tools' routing solver, and the validator
of its plans: the model behind the dispatcher's benchmark on the Li & Lim instances.

Pure: instances are parsed from text, times and distances are the instance's own units.
Objective as the Li & Lim ranking has it: fewest vehicles first (a fixed cost per vehicle used,
larger than any total distance), then distance.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from planners.budget import TimeBudget

SCALE = 100  # the solver's integers are hundredths of the instance's units


@dataclass(frozen=True, slots=True)
class Stop:
    id: int
    x: float
    y: float
    demand: int  # + at a pickup, - at its delivery, 0 at the depot
    earliest: float
    latest: float
    service: float
    pickup_of: int  # for a delivery: its pickup's id; else 0
    delivery_of: int  # for a pickup: its delivery's id; else 0


@dataclass(frozen=True, slots=True)
class PdptwInstance:
    name: str
    vehicles: int  # at most
    capacity: int
    stops: tuple[Stop, ...]  # stops[0] is the depot

    def __post_init__(self) -> None:
        if not self.stops or self.stops[0].demand != 0:
            raise ValueError(f"{self.name}: the first stop must be the depot")
        for k, stop in enumerate(self.stops):
            if stop.id != k:
                raise ValueError(f"{self.name}: stop {k} has id {stop.id}")

    @property
    def requests(self) -> list[tuple[int, int]]:
        """(pickup, delivery) pairs."""
        return [(s.id, s.delivery_of) for s in self.stops[1:] if s.delivery_of]

    def distance(self, a: int, b: int) -> float:
        sa, sb = self.stops[a], self.stops[b]
        return math.hypot(sa.x - sb.x, sa.y - sb.y)


def parse_li_lim(text: str, name: str) -> PdptwInstance:
    """A Li & Lim instance file: `K Q S`, then `id x y demand earliest latest service pickup delivery`."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    vehicles, capacity = int(lines[0][0]), int(lines[0][1])
    stops = []
    for fields in lines[1:]:
        i, x, y, demand, earliest, latest, service, pickup, delivery = fields[:9]
        numbers = (float(x), float(y), int(demand), float(earliest), float(latest), float(service))
        stops.append(Stop(int(i), *numbers, int(pickup), int(delivery)))
    return PdptwInstance(name, vehicles, capacity, tuple(stops))


@dataclass(frozen=True, slots=True)
class PdptwPlan:
    routes: tuple[tuple[int, ...], ...]  # stops visited by each vehicle used, depot left out
    distance: float  # in double precision, as the benchmark reports it

    @property
    def vehicles(self) -> int:
        return len(self.routes)


def route_distance(instance: PdptwInstance, route: tuple[int, ...]) -> float:
    path = (0, *route, 0)
    return sum(instance.distance(a, b) for a, b in itertools.pairwise(path))


def validate_pdptw(instance: PdptwInstance, routes: tuple[tuple[int, ...], ...]) -> list[str]:
    """Every problem of a plan: each request served exactly once, its pickup before its delivery
    on the same route, capacity never exceeded, every time window kept (waiting allowed),
    back at the depot before it closes, no more vehicles than the instance has."""
    problems = []
    if len(routes) > instance.vehicles:
        problems.append(f"{len(routes)} vehicles used, the instance has {instance.vehicles}")
    seen: dict[int, int] = {}
    for r, route in enumerate(routes):
        load, t, here = 0, instance.stops[0].earliest, 0
        position = {stop: k for k, stop in enumerate(route)}
        for stop_id in route:
            if stop_id <= 0 or stop_id >= len(instance.stops):
                problems.append(f"route {r}: no stop {stop_id}")
                continue
            if stop_id in seen:
                problems.append(f"stop {stop_id} visited twice (routes {seen[stop_id]} and {r})")
            seen[stop_id] = r
            stop = instance.stops[stop_id]
            arrive = t + instance.distance(here, stop_id)
            if arrive > stop.latest + 1e-6:
                problems.append(
                    f"route {r}: stop {stop_id} reached at {arrive:.2f}, after its window ends at {stop.latest}"
                )
            t = max(arrive, stop.earliest) + stop.service
            load += stop.demand
            if load > instance.capacity:
                problems.append(f"route {r}: load {load} after stop {stop_id}, capacity {instance.capacity}")
            if stop.delivery_of and position.get(stop.delivery_of, -1) < position[stop_id]:
                problems.append(f"route {r}: pickup {stop_id} without its delivery {stop.delivery_of} after it")
            if stop.pickup_of and position.get(stop.pickup_of, len(route)) > position[stop_id]:
                problems.append(f"route {r}: delivery {stop_id} without its pickup {stop.pickup_of} before it")
            here = stop_id
        back = t + instance.distance(here, 0)
        if back > instance.stops[0].latest + 1e-6:
            problems.append(
                f"route {r}: back at the depot at {back:.2f}, after it closes at {instance.stops[0].latest}"
            )
    missing = sorted(set(range(1, len(instance.stops))) - set(seen))
    if missing:
        problems.append(f"stops never visited: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    return problems


@dataclass(frozen=True, slots=True)
class SolveSettings:
    time_limit_s: float = 10.0
    vehicle_cost: int = 10_000_000  # above any total distance (x SCALE): fewest vehicles first
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    eliminate_routes: bool = True  # try plans with one vehicle fewer, from the best plan found
    elimination: str = "ruin"  # by ruin and recreate ("ruin") or by the solver ("ortools")
    first_share: float = 0.25  # of the time, for the first plan; then route elimination; the rest on distance
    tries_per_route: int = 3  # routes tried for removal (the smallest first) before giving up on one fewer
    distance_share: float = 0.4  # of the time, kept for shortening the routes of the fewest vehicles found
    seed: int = 0  # of the ruin and recreate that shortens them

    def __post_init__(self) -> None:
        if self.elimination not in ("ruin", "ortools"):
            raise ValueError(f"elimination must be 'ruin' or 'ortools', not {self.elimination!r}")


class _Model:
    """One OR-Tools routing model of an instance with `vehicles` vehicles; with `optional`,
    requests may stay unserved at a penalty far above the cost of a vehicle."""

    def __init__(self, instance: PdptwInstance, vehicles: int, settings: SolveSettings, optional: bool) -> None:
        self.instance = instance
        n = len(instance.stops)
        dist = [[round(instance.distance(a, b) * SCALE) for b in range(n)] for a in range(n)]
        service = [round(s.service * SCALE) for s in instance.stops]
        self.manager = manager = pywrapcp.RoutingIndexManager(n, vehicles, 0)
        self.routing = routing = pywrapcp.RoutingModel(manager)
        self.vehicles = vehicles

        # Matrices and vectors, not Python callbacks: OR-Tools evaluates them in C++, so the
        # search makes several times more moves in the same time.
        travel = [[dist[a][b] + service[a] for b in range(n)] for a in range(n)]
        distance = routing.RegisterTransitMatrix(dist)
        routing.SetArcCostEvaluatorOfAllVehicles(distance)
        routing.SetFixedCostOfAllVehicles(settings.vehicle_cost)
        horizon = round(instance.stops[0].latest * SCALE)
        routing.AddDimension(routing.RegisterTransitMatrix(travel), horizon, horizon, False, "time")
        time = routing.GetDimensionOrDie("time")
        demand = routing.RegisterUnaryTransitVector([s.demand for s in instance.stops])
        routing.AddDimensionWithVehicleCapacity(demand, 0, [instance.capacity] * vehicles, True, "load")
        for stop in instance.stops[1:]:
            time.CumulVar(manager.NodeToIndex(stop.id)).SetRange(
                round(stop.earliest * SCALE), round(stop.latest * SCALE)
            )
        depot = instance.stops[0]
        for v in range(vehicles):
            time.CumulVar(routing.Start(v)).SetRange(round(depot.earliest * SCALE), horizon)
            time.CumulVar(routing.End(v)).SetRange(round(depot.earliest * SCALE), horizon)
        solver = routing.solver()
        penalty = 100 * settings.vehicle_cost
        for pickup, delivery in instance.requests:
            p, d = manager.NodeToIndex(pickup), manager.NodeToIndex(delivery)
            routing.AddPickupAndDelivery(p, d)
            solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
            solver.Add(time.CumulVar(p) <= time.CumulVar(d))
            if optional:
                routing.AddDisjunction([p], penalty)
                routing.AddDisjunction([d], penalty)

    def params(self, settings: SolveSettings, seconds: float) -> pywrapcp.DefaultRoutingSearchParameters:
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, settings.first_solution)
        params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, settings.metaheuristic)
        params.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
        return params

    def solve(
        self, settings: SolveSettings, seconds: float, start: tuple[tuple[int, ...], ...] | None = None
    ) -> tuple[tuple[int, ...], ...] | None:
        """Routes of the best solution found (all requests served), or None."""
        params = self.params(settings, seconds)
        if start is None:
            solution = self.routing.SolveWithParameters(params)
        else:
            self.routing.CloseModelWithParameters(params)
            initial = self.routing.ReadAssignmentFromRoutes([list(r) for r in start], True)
            if initial is None:
                return None
            solution = self.routing.SolveFromAssignmentWithParameters(initial, params)
        if solution is None:
            return None
        routes = []
        served = 0
        for v in range(self.vehicles):
            index, route = solution.Value(self.routing.NextVar(self.routing.Start(v))), []
            while not self.routing.IsEnd(index):
                route.append(self.manager.IndexToNode(index))
                index = solution.Value(self.routing.NextVar(index))
            served += len(route)
            if route:
                routes.append(tuple(route))
        if served != len(self.instance.stops) - 1:
            return None  # some requests left unserved: not a plan
        return tuple(routes)


def solve_pdptw(instance: PdptwInstance, settings: SolveSettings | None = None) -> PdptwPlan | None:
    """The best plan found within the time limit (None: none found).

    A first plan (cheapest insertion, then guided local search) for a share of the time; then,
    while time lasts, route elimination: by default ruin and recreate with a pool of requests
    left out (`planners.ruin_recreate.fewer_routes`); with `elimination="ortools"`, the route
    serving the fewest requests is dropped and the solver, with one vehicle fewer and requests
    optional at a penalty far above a vehicle's cost, tries to place its requests in the other
    routes. The share of time kept for distance goes to ruin and recreate
    (`planners.ruin_recreate.improve`), which shortens the best plan and may empty a route;
    OR-Tools' own local search was stuck there on long, tightly timed routes.
    """
    settings = settings or SolveSettings()
    deadline = TimeBudget(settings.time_limit_s)
    first = settings.time_limit_s * (settings.first_share if settings.eliminate_routes else 1.0)
    best = _Model(instance, instance.vehicles, settings, optional=False).solve(settings, first)
    if best is None and deadline.left() > 0.05:  # a plan late beats no plan
        best = _Model(instance, instance.vehicles, settings, optional=False).solve(settings, deadline.left() - 0.02)
    if best is None:
        return None
    # Imported here: ruin_recreate reads this module's instance types.
    from planners.ruin_recreate import fewer_routes, improve

    if settings.eliminate_routes and settings.elimination == "ruin":
        keep = settings.distance_share * settings.time_limit_s
        best = fewer_routes(instance, best, lambda: deadline.left() - keep, seed=settings.seed)
    elif settings.eliminate_routes:
        best = eliminate_routes(instance, best, settings, deadline)
    if deadline.left() > 0.01:
        best = improve(instance, best, deadline.left, seed=settings.seed)
    return PdptwPlan(best, round(sum(route_distance(instance, r) for r in best), 2))


def eliminate_routes(
    instance: PdptwInstance, routes: tuple[tuple[int, ...], ...], settings: SolveSettings, deadline: TimeBudget
) -> tuple[tuple[int, ...], ...]:
    """Fewer routes if the solver finds a way, never more: drop the route with the fewest
    requests (the next smallest if that fails, up to `tries_per_route`), have the solver place
    its requests in the others, repeat while it succeeds and time lasts."""
    best = routes
    while len(best) > 1:
        fewer = None
        current = best
        for drop in sorted(range(len(current)), key=lambda k: len(current[k]))[: settings.tries_per_route]:
            budget = min(deadline.left() - settings.distance_share * settings.time_limit_s, settings.time_limit_s / 4)
            if budget < 0.05 * settings.time_limit_s:
                break
            rest = best[:drop] + best[drop + 1 :]
            fewer = _Model(instance, len(rest), settings, optional=True).solve(settings, budget, rest)
            if fewer is not None:
                break
        if fewer is None:
            break
        best = fewer
    return best
