"""Ruin and recreate for pickup-and-delivery plans with time windows: shortens the routes of a
feasible plan by removing strings of neighbouring stops (with their siblings) and inserting the
requests again where they cost least, accepting by simulated annealing.

OR-Tools' local search stalls on plans whose routes are long and tightly timed (Li & Lim's
type-2 instances: a route of 60+ stops where nearly every move of one or two stops breaks a
window); removing a dozen requests at once and rebuilding reaches plans those moves cannot.
The ruin is SISR's (Christiaens and Vanden Berghe, 2020: strings of consecutive stops from
routes near a random seed); a request is always removed whole, pickup and delivery together.

Insertion is evaluated for every pickup and delivery position pair of a route at once, in
numpy: a delay pushed into a route shrinks by the waiting it meets, so the delay at each stop is
the first delay minus the waiting summed in between, and every check is a running minimum or
maximum along the route. Pure: no clock but the deadline handed in, a seeded random generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planners.pdptw import PdptwInstance

Routes = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class RuinSettings:
    mean_removed: float = 10.0  # stops removed per ruin on average (SISR's c-bar)
    max_string: int = 10  # longest string cut from one route (SISR's L-max)
    blink: float = 0.01  # chance that an insertion position is skipped: diversity
    start_temperature: float = 0.01  # of the plan's distance
    end_temperature: float = 0.0002
    vehicle_weight: float = 1e6  # a route fewer is worth more than any distance


class _Instance:
    """The instance as numpy arrays, with each stop's nearest stops."""

    def __init__(self, instance: PdptwInstance) -> None:
        stops = instance.stops
        xy = np.array([(s.x, s.y) for s in stops])
        self.dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        self.earliest = np.array([s.earliest for s in stops])
        self.latest = np.array([s.latest for s in stops])
        self.service = np.array([s.service for s in stops])
        self.demand = np.array([s.demand for s in stops])
        self.capacity = instance.capacity
        self.sibling = [s.delivery_of or s.pickup_of for s in stops]
        self.is_pickup = [s.delivery_of != 0 for s in stops]
        self.neighbours = [list(np.argsort(self.dist[k])[1:]) for k in range(len(stops))]


class _Route:
    """One route with its schedule: arrival, waiting, departure, the latest arrival that keeps
    the rest of the route on time, and the load after each position (depot at both ends)."""

    def __init__(self, inst: _Instance, stops: list[int]) -> None:
        self.stops = stops
        seq = [0, *stops, 0]
        n = len(seq)
        d, e, lt, s = inst.dist, inst.earliest, inst.latest, inst.service
        arrive, wait, depart, load = [0.0] * n, [0.0] * n, [0.0] * n, [0] * n
        arrive[0] = e[0]
        depart[0] = e[0] + s[0]
        for k in range(1, n):
            arrive[k] = depart[k - 1] + d[seq[k - 1], seq[k]]
            wait[k] = max(0.0, e[seq[k]] - arrive[k])
            depart[k] = arrive[k] + wait[k] + s[seq[k]]
            load[k] = load[k - 1] + int(inst.demand[seq[k]])
        latest = [0.0] * n
        latest[-1] = lt[0]
        for k in range(n - 2, -1, -1):
            latest[k] = min(lt[seq[k]], latest[k + 1] - s[seq[k]] - d[seq[k], seq[k + 1]])
        self.seq = np.array(seq)
        self.arrive, self.depart = np.array(arrive), np.array(depart)
        self.waited = np.concatenate(([0.0], np.cumsum(wait[1:])))  # waiting summed up to each position
        self.room = lt[self.seq] - self.arrive  # how late each stop may still be reached
        self.latest = np.array(latest)
        self.load = np.array(load)
        self.length = float(d[self.seq[:-1], self.seq[1:]].sum())


def _best_insertion(
    inst: _Instance, route: _Route, pickup: int, delivery: int, gen: np.random.Generator, blink: float
) -> tuple[float, int, int] | None:
    """Cheapest feasible (extra distance, i, j) of a request in a route, or None: the pickup
    goes after position i, the delivery after position j >= i of the route as it is (j == i:
    right after the pickup). Positions count from the depot at 0."""
    d, seq = inst.dist, route.seq
    m = len(seq) - 1  # insertion after positions 0 .. m-1
    e, lt, s, q = inst.earliest, inst.latest, inst.service, int(inst.demand[pickup])
    here, after = seq[:-1], seq[1:]
    reach_p = route.depart[:-1] + d[here, pickup]
    ok_p = (reach_p <= lt[pickup]) & (route.load[:-1] + q <= inst.capacity)
    if not ok_p.any():
        return None
    leave_p = np.maximum(reach_p, e[pickup]) + s[pickup]

    # The delivery right after the pickup.
    reach_d = leave_p + d[pickup, delivery]
    leave_d = np.maximum(reach_d, e[delivery]) + s[delivery]
    ok_next = ok_p & (reach_d <= lt[delivery]) & (leave_d + d[delivery, after] <= route.latest[1:])
    cost_next = np.where(ok_next, d[here, pickup] + d[pickup, delivery] + d[delivery, after] - d[here, after], np.inf)

    # The delivery after a later position j: the delay the pickup causes at i+1 shrinks by
    # the waiting met on the way, so at position k it is delay - (waited[k-1] - waited[i]).
    i_at = np.arange(m)[:, None]
    later = np.arange(m)[None, :] > i_at
    delay = np.maximum(0.0, leave_p + d[pickup, after] - route.arrive[1:])[:, None]
    waited_i = route.waited[:m][:, None]
    waited_before = np.concatenate(([0.0], route.waited[: m - 1]))[None, :]
    late_by = np.maximum(0.0, delay - (waited_before - waited_i))
    on_time = np.logical_and.accumulate(~later | (late_by <= route.room[:m][None, :]), axis=1)
    loads = np.where(later | (np.arange(m)[None, :] == i_at), route.load[:m][None, :], -1)
    fits = np.maximum.accumulate(loads, axis=1) + q <= inst.capacity
    leaves_late_by = np.maximum(0.0, delay - (route.waited[:m][None, :] - waited_i))
    reach_dj = route.depart[:m][None, :] + leaves_late_by + d[here, delivery][None, :]
    leave_dj = np.maximum(reach_dj, e[delivery]) + s[delivery]
    ok_far = (
        later
        & ok_p[:, None]
        & on_time
        & fits
        & (reach_dj <= lt[delivery])
        & (leave_dj + d[delivery, after][None, :] <= route.latest[1:][None, :])
    )
    add_p = d[here, pickup] + d[pickup, after] - d[here, after]
    add_d = d[here, delivery] + d[delivery, after] - d[here, after]
    cost_far = np.where(ok_far, add_p[:, None] + add_d[None, :], np.inf)
    if blink > 0:
        cost_far[gen.random(cost_far.shape) < blink] = np.inf
        cost_next[gen.random(m) < blink] = np.inf
    far = int(np.argmin(cost_far))
    near = int(np.argmin(cost_next))
    far_cost, near_cost = float(cost_far.flat[far]), float(cost_next[near])
    if math.isinf(far_cost) and math.isinf(near_cost):
        return None
    if near_cost <= far_cost:
        return near_cost, near, near
    return far_cost, far // m, far % m


def _inserted(stops: list[int], pickup: int, delivery: int, i: int, j: int) -> list[int]:
    """The route's stops with the pickup after position i and the delivery after position j
    (positions count the depot as 0; j == i: the delivery right after the pickup)."""
    return [*stops[:i], pickup, *stops[i:j], delivery, *stops[j:]]


def improve(
    instance: PdptwInstance,
    routes: Routes,
    seconds_left: Callable[[], float],
    settings: RuinSettings | None = None,
    seed: int = 0,
    iterations: int | None = None,
) -> Routes:
    """The best plan found by ruin and recreate from a feasible `routes`, never with more
    routes: a route emptied by a ruin may stay empty (one vehicle fewer). Runs until
    `seconds_left()` reaches zero or after `iterations` ruins, whichever comes first."""
    settings = settings or RuinSettings()
    inst = _Instance(instance)
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    current = [_Route(inst, list(r)) for r in routes]
    best_routes = routes
    best_cost = current_cost = _cost(current, settings)
    start = sum(r.length for r in current)
    first_left = max(seconds_left(), 1e-9)
    done = 0
    while (iterations is None or done < iterations) and (left := seconds_left()) > 0:
        done += 1
        progress = 1.0 - left / first_left if iterations is None else done / iterations
        temperature = (
            start
            * settings.start_temperature
            * (settings.end_temperature / settings.start_temperature) ** min(1.0, progress)
        )
        left_stops, removed = _ruin(inst, current, settings, rng)
        trial, unplaced = _recreate(inst, left_stops, removed, settings, rng, gen)
        if unplaced:
            continue
        trial_cost = _cost(trial, settings)
        if trial_cost < current_cost - temperature * math.log(1.0 - rng.random()):
            current, current_cost = trial, trial_cost
            if trial_cost < best_cost - 1e-9:
                best_cost = trial_cost
                best_routes = tuple(tuple(r.stops) for r in trial if r.stops)
    return best_routes


def fewer_routes(
    instance: PdptwInstance,
    routes: Routes,
    seconds_left: Callable[[], float],
    settings: RuinSettings | None = None,
    seed: int = 0,
    iterations: int | None = None,
) -> Routes:
    """The plan with the fewest routes that ruin and recreate finds from a feasible `routes`:
    SISR's fleet minimisation. The route with the fewest requests is dropped and its requests
    wait in a pool; each ruin re-inserts the removed requests and the pool, and the result is
    kept when fewer requests stay out, or the ones that stay out were out less often before
    (each request counts the ruins it spent out: the hard ones get placed first in time). An
    empty pool is a plan with a route fewer, and the next smallest route goes. Runs until
    `seconds_left()` reaches zero or after `iterations` ruins."""
    settings = settings or RuinSettings()
    inst = _Instance(instance)
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    best = routes
    absent = [0] * len(instance.stops)
    current, pool = _drop_smallest(inst, best)
    done = 0
    while len(best) > 1 and (iterations is None or done < iterations) and seconds_left() > 0:
        done += 1
        left_stops, removed = _ruin(inst, current, settings, rng)
        trial, unplaced = _recreate(inst, left_stops, removed + pool, settings, rng, gen)
        if len(unplaced) < len(pool) or sum(absent[p] for p in unplaced) < sum(absent[p] for p in pool):
            current, pool = trial, unplaced
        for pickup in pool:
            absent[pickup] += 1
        if not pool:
            best = tuple(tuple(r.stops) for r in current if r.stops)
            current, pool = _drop_smallest(inst, best)
    return best


def _drop_smallest(inst: _Instance, routes: Routes) -> tuple[list[_Route], list[int]]:
    """The routes but the one with the fewest requests, and the pickups of that one's requests."""
    smallest = min(range(len(routes)), key=lambda k: len(routes[k]))
    kept = [_Route(inst, list(r)) for k, r in enumerate(routes) if k != smallest]
    return kept, [stop for stop in routes[smallest] if inst.is_pickup[stop]]


def _cost(routes: list[_Route], settings: RuinSettings) -> float:
    return sum(settings.vehicle_weight + r.length for r in routes if r.stops)


def _ruin(
    inst: _Instance, routes: list[_Route], settings: RuinSettings, rng: random.Random
) -> tuple[list[list[int]], list[int]]:
    """SISR's string removal: strings of consecutive stops cut from the routes of the stops
    nearest a random seed stop; each request cut at either end goes whole. Returns the
    routes' stops left and the pickups of the requests removed."""
    where = {stop: k for k, r in enumerate(routes) for stop in r.stops}
    used = [r for r in routes if r.stops]
    mean_length = sum(len(r.stops) for r in used) / max(1, len(used))
    longest = min(float(settings.max_string), mean_length)
    most_strings = 4 * settings.mean_removed / (1 + longest) - 1
    strings = int(rng.uniform(1, most_strings + 1))
    seed_stop = rng.choice(list(where))
    cut: set[int] = set()
    ruined: set[int] = set()
    for stop in [seed_stop, *inst.neighbours[seed_stop]]:
        if len(ruined) >= strings:
            break
        k = where.get(int(stop))
        if k is None or k in ruined or stop in cut:
            continue
        ruined.add(k)
        stops = routes[k].stops
        length = int(rng.uniform(1, min(longest, len(stops)) + 1))
        at = stops.index(int(stop))
        first = rng.randint(max(0, at - length + 1), min(at, len(stops) - length))
        cut.update(stops[first : first + length])
    cut |= {inst.sibling[stop] for stop in cut}
    left = [[stop for stop in r.stops if stop not in cut] for r in routes]
    return left, [stop for stop in cut if inst.is_pickup[stop]]


def _recreate(
    inst: _Instance,
    stops: list[list[int]],
    pickups: list[int],
    settings: RuinSettings,
    rng: random.Random,
    gen: np.random.Generator,
) -> tuple[list[_Route], list[int]]:
    """Each request of `pickups`, in one of SISR's orders (random, largest load, farthest from
    or nearest to the depot), at its cheapest feasible position over all routes; returns the
    routes and the pickups of the requests that fit nowhere."""
    order = rng.randrange(4)
    if order == 0:
        rng.shuffle(pickups)
    elif order == 1:
        pickups.sort(key=lambda p: -inst.demand[p])
    else:
        pickups.sort(key=lambda p: inst.dist[0, p], reverse=order == 2)
    routes = [_Route(inst, r) for r in stops]
    unplaced = []
    for pickup in pickups:
        delivery = inst.sibling[pickup]
        best: tuple[float, int, int, int] | None = None
        for in_empty in (False, True):  # an empty route (a vehicle more) only if no other takes it
            for k, route in enumerate(routes):
                if bool(route.stops) == in_empty:
                    continue
                found = _best_insertion(inst, route, pickup, delivery, gen, settings.blink)
                if found is not None and (best is None or found[0] < best[0]):
                    best = (found[0], k, found[1], found[2])
            if best is not None:
                break
        if best is None:
            unplaced.append(pickup)
            continue
        _, k, i, j = best
        routes[k] = _Route(inst, _inserted(routes[k].stops, pickup, delivery, i, j))
    return routes, unplaced
