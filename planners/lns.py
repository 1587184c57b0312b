"""Anytime refinement of a one-shot MAPF solution by large neighbourhood search.

MAPF-LNS (Li, Chen, Harabor, Stuckey and Koenig, "Anytime Multi-Agent Path Finding via Large
Neighborhood Search", IJCAI 2021): take a valid solution (LaCAM's or PIBT's first one), then,
until the time is up, pick a few agents, delete their paths, and plan them again one by one
with safe-interval path planning (SIPP) around everybody else's path; keep the new paths if
their sum of costs is lower, else put the old ones back. Every accepted state is a valid
solution, so the search can be stopped at any moment. Neighbourhoods alternate between the agent
delayed most (with the agents standing on its shortest path) and agents near one crossing cell.
`prioritised` plans with the same SIPP from scratch, agent after agent: a first solution that
starts the refinement lower where it succeeds.

Costs are those of `MapfResult.sum_of_costs`: per agent, the time it reaches its goal for good.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Mapping, Sequence
from typing import TypeVar

from planners.budget import NO_LIMIT, TimeBudget, as_budget
from planners.mapf import Config, GridGraph, MapfResult

Path = list[int]  # cell per time step, from the start until the goal is reached for good
# A search state: the cell first, then what tells a cell's states apart (interval, collisions).
_State = TypeVar("_State", bound=tuple[int, ...])
_INF = float("inf")
_SLACK_STEPS = 64  # a replanned path may end this many steps after the longest one
_BUDGET_PER_CELL = 4  # states one replanning may expand, per cell of the map


def _horizon(individual: Sequence[float]) -> int:
    """The last time step a first path may use: four times the longest shortest path, and slack."""
    return int(4 * max(individual, default=0)) + _SLACK_STEPS


def _state_budget(graph: GridGraph) -> int:
    """States one replanning may expand: a failing search gives up early instead of searching
    most of its horizon, and the time goes to other agents or neighbourhoods."""
    return _BUDGET_PER_CELL * len(graph.neighbours)


class _Reservations:
    """Where the other agents are: agents per cell and time, moves per time, the times each cell
    is taken, and cells held for good by an agent that has arrived (from its arrival on). Paths
    may collide (`planners/lns2.py` repairs such sets): a cell and time then holds several
    agents, and a time appears once per agent in `times`."""

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], list[int]] = {}  # (t, cell) -> agents
        self.moves: dict[tuple[int, int, int], int] = {}  # (t, from, to): how many move from->to between t-1 and t
        self.parked: dict[int, int] = {}  # cell -> time from which it is held for good
        self.parker: dict[int, int] = {}  # cell -> the agent holding it for good
        self.times: dict[int, list[int]] = {}  # cell -> the times it is taken before being parked on, sorted
        # cell -> `spans` and `soft_spans`, kept until a path through the cell is added or removed
        self.spans_cache: dict[int, tuple[list[int], list[float]]] = {}
        self.soft_cache: dict[int, tuple[list[int], list[float], list[int]]] = {}

    def add(self, agent: int, path: Path) -> None:
        for t, v in enumerate(path):
            self.cells.setdefault((t, v), []).append(agent)
            bisect.insort(self.times.setdefault(v, []), t)
            if t:
                move = (t, path[t - 1], v)
                self.moves[move] = self.moves.get(move, 0) + 1
        self.parked[path[-1]] = len(path) - 1
        self.parker[path[-1]] = agent
        for v in path:
            self.spans_cache.pop(v, None)
            self.soft_cache.pop(v, None)

    def remove(self, agent: int, path: Path) -> None:
        for t, v in enumerate(path):
            here = self.cells[(t, v)]
            here.remove(agent)
            if not here:
                del self.cells[(t, v)]
            times = self.times[v]
            del times[bisect.bisect_left(times, t)]
            if t:
                move = (t, path[t - 1], v)
                if self.moves[move] == 1:
                    del self.moves[move]
                else:
                    self.moves[move] -= 1
        del self.parked[path[-1]]
        del self.parker[path[-1]]
        for v in path:
            self.spans_cache.pop(v, None)
            self.soft_cache.pop(v, None)

    def occupied(self, t: int, v: int) -> bool:
        since = self.parked.get(v)
        return (since is not None and t >= since) or (t, v) in self.cells

    def free_after(self, v: int) -> int:
        """The first time from which nobody but a parked agent is on `v` any more."""
        times = self.times.get(v)
        return times[-1] + 1 if times else 0

    def spans(self, v: int) -> tuple[list[int], list[float]]:
        """v's safe intervals as their first and their last times (what the search reads)."""
        found = self.spans_cache.get(v)
        if found is None:
            intervals = self.safe_intervals(v)
            found = self.spans_cache[v] = ([lo for lo, _ in intervals], [hi for _, hi in intervals])
        return found

    def soft_spans(self, v: int) -> tuple[list[int], list[float], list[int]]:
        """v's `soft_intervals` as their first times, last times and counts."""
        found = self.soft_cache.get(v)
        if found is None:
            intervals = self.soft_intervals(v)
            found = self.soft_cache[v] = (
                [i[0] for i in intervals],
                [i[1] for i in intervals],
                [i[2] for i in intervals],
            )
        return found

    def soft_intervals(self, v: int) -> list[tuple[int, float, int]]:
        """v's time line for a search that may collide (`planners/lns2.py`), in order, as (first,
        last, agents there): free ranges (0), each single step others stand on v, and from when
        an agent holds v for good on to infinity (counted as one, plus those passing it then)."""
        out: list[tuple[int, float, int]] = []
        since = self.parked.get(v)
        end = _INF if since is None else since
        times = self.times.get(v, [])
        first, k = 0, 0
        while k < len(times) and times[k] < end:
            t = times[k]
            count = 0
            while k < len(times) and times[k] == t:
                count += 1
                k += 1
            if t > first:
                out.append((first, t - 1, 0))
            out.append((t, t, count))
            first = t + 1
        if since is None:
            out.append((first, _INF, 0))
        else:
            if since > first:
                out.append((first, since - 1, 0))
            out.append((since, _INF, len(times) - k))
        return out

    def safe_intervals(self, v: int) -> list[tuple[int, float]]:
        """The maximal time ranges [first, last] in which `v` is free, in order; the last one
        ends at infinity unless an agent parks on `v`."""
        intervals: list[tuple[int, float]] = []
        first = 0
        for t in self.times.get(v, ()):
            if t > first:
                intervals.append((first, t - 1))
            first = t + 1
        since = self.parked.get(v)
        if since is None:
            intervals.append((first, _INF))
        elif since > first:
            intervals.append((first, since - 1))
        return intervals


def _plan(
    graph: GridGraph,
    start: int,
    goal: int,
    distance: Sequence[float],
    taken: _Reservations,
    horizon: int,
    deadline: TimeBudget = NO_LIMIT,
    max_expanded: int | None = None,
) -> Path | None:
    """Safe-interval path planning (Phillips and Likhachev, ICRA 2011) on the grid, one step per
    move, around the reservations: no vertex or swap conflict, not through a cell held for good,
    arriving when nobody will come by the goal any more. A state is a cell with one of its safe
    intervals, reached as early as possible, so waiting costs no extra states. None when no
    such path arrives within `horizon` steps, after `max_expanded` states, or when `deadline`
    is spent."""
    if goal in taken.parked:
        return None
    settle = taken.free_after(goal)
    spans, cached = taken.spans, taken.spans_cache  # the dictionary first: a method call per state costs
    firsts, lasts = spans(start)
    if not firsts or firsts[0] > 0 or max(distance[start], settle) > horizon:
        return None
    tie = itertools.count()
    moves = taken.moves
    # Among equal f the state nearer the goal, then the deeper one (h is exact without others):
    # far fewer expansions, also when f is the wait for the goal to be free for good.
    # h: steps to the goal, or the wait until it is free for good if that is longer.
    # (f, h, -t, tie, t, cell, interval, last time of the interval)
    queue: list[tuple[float, float, int, int, int, int, int, float]] = [
        (max(distance[start], settle), distance[start], 0, next(tie), 0, start, 0, lasts[0])
    ]
    arrival: dict[tuple[int, int], int] = {(start, 0): 0}
    parent: dict[tuple[int, int], tuple[int, int] | None] = {(start, 0): None}
    for expanded in itertools.count():
        if not queue or expanded == max_expanded or (expanded % 512 == 0 and deadline.over()):
            return None
        _, _, _, _, t, v, i, last = heapq.heappop(queue)
        if t > arrival[(v, i)]:
            continue  # reached earlier since
        if v == goal and last == _INF:
            return _unfold(parent, arrival, (v, i))
        for w in graph.neighbours[v]:
            h = distance[w]
            if h == _INF:
                continue
            los, his = cached.get(w) or spans(w)
            for j in range(bisect.bisect_left(his, t + 1), len(his)):
                nt = t + 1 if los[j] <= t + 1 else los[j]
                if nt - 1 > last or nt > horizon:
                    break  # later intervals need a longer wait on v than v is free
                if (nt, w, v) in moves:
                    continue  # a swap: the other agent comes onto v at nt, so waiting longer is no way out
                if nt >= arrival.get((w, j), horizon + 1):
                    continue
                rest = settle - nt
                f = nt + (h if h > rest else rest)
                if f > horizon:
                    continue  # f never overestimates the arrival: this state cannot arrive in time
                arrival[(w, j)] = nt
                parent[(w, j)] = (v, i)
                heapq.heappush(queue, (f, h, -nt, next(tie), nt, w, j, his[j]))
    return None  # not reached: the loop ends by returning


def _unfold(parent: Mapping[_State, _State | None], arrival: Mapping[_State, int], end: _State) -> Path:
    """The path, one cell per step, waits included, from the start's state to `end` (states
    are tuples whose first item is the cell)."""
    states: list[_State] = []
    key: _State | None = end
    while key is not None:
        states.append(key)
        key = parent[key]
    states.reverse()
    path = [states[0][0]]
    for state in states[1:]:
        path.extend([path[-1]] * (arrival[state] - len(path)))  # wait where it is until it may move
        path.append(state[0])
    return path


def paths_of(solution: Sequence[Config], goals: Sequence[int]) -> list[Path]:
    """Per agent, its cells until it reaches its goal for good."""
    paths = []
    for agent, goal in enumerate(goals):
        end = 0
        for t in range(len(solution) - 1, 0, -1):
            if solution[t - 1][agent] != goal:
                end = t
                break
        paths.append([solution[t][agent] for t in range(end + 1)])
    return paths


def configurations(paths: Sequence[Path]) -> list[Config]:
    """The solution as one configuration per step, each agent at its goal after its path."""
    makespan = max((len(p) for p in paths), default=1)
    return [tuple(p[min(t, len(p) - 1)] for p in paths) for t in range(makespan)]


def prioritised(
    graph: GridGraph, starts: Sequence[int], goals: Sequence[int], time_limit_s: float | TimeBudget
) -> MapfResult:
    """Prioritised planning (Silver, "Cooperative Pathfinding", AIIDE 2005) with SIPP: agents
    one by one, longest shortest path first, each around the paths of those before it. An agent
    that finds no path (its start is run over before it can leave, or it is walled in by agents
    parked at their goals) is moved to the front and all are planned again, until every one
    has a path or `time_limit_s` has passed (unsolved then). Where it succeeds its sum of costs
    is lower than LaCAM's first solution (1.13-1.46 against 1.27-1.76 of the lower bound on the
    nine benchmark instances it solves in 3 s), but it is incomplete: it fails on dense maps."""
    clock = as_budget(time_limit_s)
    n = len(starts)
    distance = graph.distances_to(goals).tolist()
    individual = [distance[a][starts[a]] for a in range(n)]
    if _INF in individual:
        return MapfResult([tuple(starts)], False, clock.spent())  # a goal cut off
    order = sorted(range(n), key=lambda a: -individual[a])
    horizon = _horizon(individual)
    budget = _state_budget(graph)
    while not clock.over():
        taken = _Reservations()
        paths: list[Path] = [[] for _ in range(n)]
        failed: list[int] = []
        for a in order:
            planned = _plan(graph, starts[a], goals[a], distance[a], taken, horizon, clock, budget)
            if planned is None:
                failed.append(a)
                continue
            paths[a] = planned
            taken.add(a, planned)
        if not failed:
            return MapfResult(configurations(paths), True, clock.spent())
        first = set(failed)
        order = failed + [a for a in order if a not in first]
    return MapfResult([tuple(starts)], False, clock.spent())


def refine(
    graph: GridGraph,
    goals: Sequence[int],
    first: MapfResult,
    time_limit_s: float | TimeBudget,
    neighbourhood: int = 8,
    seed: int = 0,
    max_rounds: int | None = None,
) -> MapfResult:
    """Lower the sum of costs of a solved `first` until `time_limit_s` has passed (counted from
    the call) or after `max_rounds` neighbourhoods (the same result on any machine: tests);
    returns the best valid solution found, `first` itself if none is better."""
    clock = as_budget(time_limit_s)
    if not first.solved or len(goals) < 2:
        return first
    rng = random.Random(seed)
    paths = paths_of(first.solution, goals)
    n = len(paths)
    distance = graph.distances_to(goals).tolist()
    taken = _Reservations()
    for agent, path in enumerate(paths):
        taken.add(agent, path)
    size = min(neighbourhood, n)
    # Cells with three or more neighbours (any cell on a map without them).
    crossings = [v for v, ns in enumerate(graph.neighbours) if len(ns) >= 3] or list(range(len(graph.neighbours)))
    budget = _state_budget(graph)
    for round_ in itertools.count():
        if clock.over() or (max_rounds is not None and round_ >= max_rounds):
            break
        chosen = (
            _delayed_neighbourhood(paths, distance, taken, size, rng)
            if round_ % 2
            else _crossing(graph, crossings, paths, size, rng)
        )
        old = {a: paths[a] for a in chosen}
        for a in chosen:
            taken.remove(a, paths[a])
        horizon = max(len(p) for p in paths) + _SLACK_STEPS
        new: dict[int, Path] = {}
        order = list(chosen)
        rng.shuffle(order)
        # Only a lower sum of costs is kept, so each agent's path may be at most as long as the
        # old paths' sum leaves once those planned before it and the shortest paths of those
        # after it are paid: a search that cannot beat that stops as soon as it knows.
        least = {a: int(distance[a][paths[a][0]]) + 1 for a in order}  # the cost of its shortest path
        spare = sum(len(p) for p in old.values()) - 1 - sum(least.values())
        for a in order:
            spare += least[a]
            bound = min(horizon, spare - 1)  # the path's last step, one less than its cost
            planned = _plan(graph, paths[a][0], goals[a], distance[a], taken, bound, clock, budget)
            if planned is None:
                break
            new[a] = planned
            spare -= len(planned)
            taken.add(a, planned)
        improved = len(new) == len(order)  # every path within its bound: together they cost less
        if not improved:
            for a in new:
                taken.remove(a, new[a])
            for a in chosen:
                taken.add(a, old[a])
        else:
            for a, path in new.items():
                paths[a] = path
    return MapfResult(configurations(paths), True, first.seconds + clock.spent())


def _delayed_neighbourhood(
    paths: Sequence[Path], distance: Sequence[Sequence[float]], taken: _Reservations, size: int, rng: random.Random
) -> list[int]:
    """One of the five agents delayed most against their shortest paths, at random, and the
    agents on its path's cells one step before, at or after it passes."""
    delay = [len(p) - 1 - distance[a][p[0]] for a, p in enumerate(paths)]
    agent = rng.choice(sorted(range(len(paths)), key=lambda a: -delay[a])[:5])
    chosen = [agent]
    for t, v in enumerate(paths[agent]):
        for tt in (t - 1, t, t + 1):
            for other in taken.cells.get((tt, v), ()):
                if other not in chosen:
                    chosen.append(other)
                    if len(chosen) == size:
                        return chosen
    rest = [a for a in range(len(paths)) if a not in chosen]
    return chosen + rng.sample(rest, min(size - len(chosen), len(rest)))


def _crossing(
    graph: GridGraph, crossings: Sequence[int], paths: Sequence[Path], size: int, rng: random.Random
) -> list[int]:
    """Agents whose paths pass near one of the `crossings` cells, picked at random."""
    cell = rng.choice(crossings)
    near = {cell, *graph.neighbours[cell]}
    chosen = [a for a, p in enumerate(paths) if near.intersection(p)]
    rng.shuffle(chosen)
    if len(chosen) < size:
        rest = [a for a in range(len(paths)) if a not in chosen]
        chosen += rng.sample(rest, min(size - len(chosen), len(rest)))
    return chosen[:size]
