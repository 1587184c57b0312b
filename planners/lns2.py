"""A first one-shot MAPF solution by repairing collisions, for maps too dense for prioritised planning.

MAPF-LNS2 (Li, Chen, Harabor, Stuckey and Koenig, "MAPF-LNS2: Fast Repairing for Multi-Agent Path
Finding via Large Neighborhood Search", AAAI 2022): plan the agents one by one, each with the
fewest collisions with the paths before it instead of none (prioritised planning gives up
where none exists), then, while paths collide, take a few agents that collide, delete their paths
and plan them again the same way around everybody else; keep the new paths unless they collide
in more pairs, else put the old ones back. The result, once no pair collides, is a valid
solution for `planners.lns.refine` to lower further.

Each search is safe-interval path planning with soft constraints (SIPPS in the paper): a cell's
time line is cut into free intervals and the single steps at which others stand on it (or from
when one holds it for good); entering an occupied step or swapping with a passing agent counts
as collisions, and states are compared by collisions first and arrival second.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Sequence

from planners.budget import NO_LIMIT, TimeBudget, as_budget
from planners.lns import _INF, Path, _horizon, _plan, _Reservations, _state_budget, _unfold, configurations
from planners.mapf import GridGraph, MapfResult

_STALL_ROUNDS = 25  # rounds without fewer collisions after which the neighbourhood doubles
_MAX_NEIGHBOURHOOD = 32
# The first pass plans the nearest agents first, which leaves far fewer detours and waits to
# repair (random-64-64-20 with 500 agents: 1.12 of the lower bound against 1.42 longest first),
# unless the map is dense: more than this share of agents finding no collision-free path means
# the far agents, planned last, are walled in, and the pass starts again longest first.
_DENSE_SHARE = 0.02


def _plan_soft(
    graph: GridGraph,
    start: int,
    goal: int,
    distance: Sequence[float],
    taken: _Reservations,
    horizon: int,
    max_expanded: int | None = None,
    deadline: TimeBudget = NO_LIMIT,
) -> Path | None:
    """The path from `start` to `goal` (held from its arrival on) with the fewest collisions
    with the reservations, and among those the earliest arrival (up to the one shortcut noted
    below); None after `max_expanded` states, when `deadline` is spent, or when the goal
    cannot be reached within `horizon` steps."""
    soft, cached = taken.soft_spans, taken.soft_cache  # the dictionary first: a method call per state costs
    goal_times = taken.times.get(goal, [])
    # A path arriving before the last visit to the goal collides once more, so with as many
    # collisions so far none arrives before then: f is at least `settle`.
    settle = goal_times[-1] + 1 if goal_times else 0
    tie = itertools.count()
    c0 = soft(start)[2][0]
    # (collisions at the end at least, f, h, -t, tie, t, cell, interval, collisions, ends here for
    # good): collisions first, then f; among equal ones the state nearer the goal, then the
    # deeper one (as in `planners.lns`).
    queue: list[tuple[int, float, float, int, int, int, int, int, int, bool]] = [
        (c0, max(distance[start], settle), distance[start], 0, next(tie), 0, start, 0, c0, False)
    ]
    arrival: dict[tuple[int, int, int], int] = {(start, 0, c0): 0}
    parent: dict[tuple[int, int, int], tuple[int, int, int] | None] = {(start, 0, c0): None}
    labels: dict[tuple[int, int], list[tuple[int, int]]] = {(start, 0): [(c0, 0)]}  # (collisions, arrival)
    for expanded in itertools.count():
        if not queue or expanded == max_expanded or (expanded % 512 == 0 and deadline.over()):
            return None
        _, _, _, _, _, t, v, i, c, final = heapq.heappop(queue)
        if final:
            return _unfold(parent, arrival, (v, i, c))
        if arrival[(v, i, c)] < t:
            continue  # reached earlier since, with as many collisions
        los, his, counts = cached.get(v) or soft(v)
        last = his[i]
        came = (v, i, c)
        if v == goal:
            # Stay for good: everyone who comes by later runs into it.
            ends = c + len(goal_times) - bisect.bisect_right(goal_times, t)
            heapq.heappush(queue, (ends, t, 0.0, -t, next(tie), t, v, i, c, True))
        steps: list[tuple[int, int, int, int]] = []  # (cell, interval, arrival, collisions)
        if i + 1 < len(los) and los[i + 1] == last + 1 <= horizon:
            steps.append((v, i + 1, los[i + 1], c + counts[i + 1]))  # stay on through somebody's visit
        for w in graph.neighbours[v]:
            if distance[w] == _INF:
                continue
            wlos, whis, wcounts = cached.get(w) or soft(w)
            for j in range(bisect.bisect_left(whis, t + 1), len(whis)):
                nt = t + 1 if wlos[j] <= t + 1 else wlos[j]
                if nt - 1 > last or nt > horizon:
                    break
                if wcounts[j] and nt > t + 1 and whis[j] != _INF:
                    # Not searched: waiting on v only to run into somebody on w later. The search
                    # gets smaller; a path may then collide once more than the fewest.
                    continue
                steps.append((w, j, nt, c + wcounts[j] + taken.moves.get((nt, w, v), 0)))
        for w, j, nt, nc in steps:
            seen = labels.get((w, j))
            if seen is None:
                labels[(w, j)] = [(nc, nt)]
            elif any(sc <= nc and st <= nt for sc, st in seen):
                continue
            else:
                seen.append((nc, nt))
            arrival[(w, j, nc)] = nt
            parent[(w, j, nc)] = came
            h = distance[w]
            f = nt + h
            heapq.heappush(queue, (nc, f if f > settle else settle, h, -nt, next(tie), nt, w, j, nc, False))
    return None  # not reached: the loop ends by returning


def _partners(taken: _Reservations, agent: int, path: Path) -> set[int]:
    """The agents whose reserved paths collide with `path` (vertex, swap, or on a cell held
    for good by one of them), `agent` itself not counted."""
    found: set[int] = set()
    for t, v in enumerate(path):
        found.update(taken.cells.get((t, v), ()))
        since = taken.parked.get(v)
        if since is not None and t >= since:
            found.add(taken.parker[v])
        if t:
            back = taken.moves.get((t, v, path[t - 1]))
            if back:
                before = taken.cells.get((t - 1, v), ())
                found.update(b for b in taken.cells.get((t, path[t - 1]), ()) if b in before)
    goal, arrived = path[-1], len(path) - 1
    times = taken.times.get(goal, [])
    for t in times[bisect.bisect_right(times, arrived) :]:
        found.update(taken.cells.get((t, goal), ()))
    found.discard(agent)
    return found


class _Collisions:
    """The paths, their reservations, and which agents collide with which."""

    def __init__(self, n: int) -> None:
        self.taken = _Reservations()
        self.paths: list[Path] = [[] for _ in range(n)]
        self.partners: list[set[int]] = [set() for _ in range(n)]

    def add(self, agent: int, path: Path) -> None:
        self.partners[agent] = _partners(self.taken, agent, path)
        for b in self.partners[agent]:
            self.partners[b].add(agent)
        self.paths[agent] = path
        self.taken.add(agent, path)

    def remove(self, agent: int) -> Path:
        path = self.paths[agent]
        self.taken.remove(agent, path)
        for b in self.partners[agent]:
            self.partners[b].discard(agent)
        self.partners[agent] = set()
        return path

    def pairs(self, agents: Sequence[int]) -> int:
        """Colliding pairs with at least one of `agents` in them."""
        inside = set(agents)
        return (
            sum(len(self.partners[a] - inside) for a in agents)
            + sum(len(self.partners[a] & inside) for a in agents) // 2
        )

    def colliding(self) -> list[int]:
        return [a for a, p in enumerate(self.partners) if p]


def repair(
    graph: GridGraph,
    starts: Sequence[int],
    goals: Sequence[int],
    time_limit_s: float | TimeBudget,
    neighbourhood: int = 4,
    seed: int = 0,
) -> MapfResult:
    """A collision-free solution: agents planned one by one with the fewest collisions (shortest
    shortest path first, or longest first where that fails for many, see `_DENSE_SHARE`), then
    neighbourhoods of colliding agents planned again until no pair collides; unsolved when
    `time_limit_s` has passed, or half of it before every agent has its first path."""
    clock = as_budget(time_limit_s)
    n = len(starts)
    rng = random.Random(seed)
    distance = graph.distances_to(goals).tolist()
    individual = [distance[a][starts[a]] for a in range(n)]
    if _INF in individual:
        return MapfResult([tuple(starts)], False, clock.spent())  # a goal cut off
    horizon = _horizon(individual)
    budget = _state_budget(graph)
    nearest, farthest = _orders(individual)
    # The repair would have less time than the first paths took: give the time back.
    half = clock.part(clock.seconds / 2)
    state = _first_pass(graph, starts, goals, distance, nearest, horizon, budget, half, int(_DENSE_SHARE * n))
    if state is None:
        state = _first_pass(graph, starts, goals, distance, farthest, horizon, budget, half)
    if state is None:
        return MapfResult([tuple(starts)], False, clock.spent())
    fewest, stalled = state.pairs(range(n)), 0
    while not clock.over():
        colliding = state.colliding()
        if not colliding:
            return MapfResult(configurations(state.paths), True, clock.spent())
        size = min(neighbourhood << (stalled // _STALL_ROUNDS), _MAX_NEIGHBOURHOOD, n)
        chosen = _colliding_neighbourhood(graph, state, colliding, size, rng)
        before = state.pairs(chosen)
        old = {a: state.remove(a) for a in chosen}
        order = list(chosen)
        rng.shuffle(order)
        planned: list[int] = []
        for a in order:
            path = _plan_soft(graph, starts[a], goals[a], distance[a], state.taken, horizon, budget, clock)
            if path is None:
                break
            state.add(a, path)
            planned.append(a)
        # As many collisions is kept too: moving along a plateau gets out of where the same few
        # agents would otherwise be planned again the same way.
        if len(planned) < len(order) or state.pairs(chosen) > before:
            for a in planned:
                state.remove(a)
            for a in chosen:
                state.add(a, old[a])
        total = state.pairs(range(n))
        fewest, stalled = (total, 0) if total < fewest else (fewest, stalled + 1)
    return MapfResult([tuple(starts)], False, clock.spent())


def _orders(individual: Sequence[float]) -> tuple[list[int], list[int]]:
    """The agents nearest their goals first, and farthest first (ties in agent order both ways)."""
    agents = range(len(individual))
    return sorted(agents, key=lambda a: individual[a]), sorted(agents, key=lambda a: -individual[a])


def _first_pass(
    graph: GridGraph,
    starts: Sequence[int],
    goals: Sequence[int],
    distance: Sequence[Sequence[float]],
    order: Sequence[int],
    horizon: int,
    budget: int,
    deadline: TimeBudget,
    max_failed: int | None = None,
) -> _Collisions | None:
    """Every agent's first path, in `order`, each with the fewest collisions with those before
    it. With `max_failed`, the agents that find no collision-free path are planned (with
    collisions) after all the others, and the pass gives up (None) as soon as more than that
    many have failed, before spending any soft search; None at `deadline` too."""
    state = _Collisions(len(starts))

    def add_with_fewest_collisions(a: int) -> None:
        path = _plan_soft(graph, starts[a], goals[a], distance[a], state.taken, horizon, budget, deadline)
        state.add(a, path if path is not None else _straight(graph, starts[a], distance[a]))

    failed: list[int] = []
    for a in order:
        if deadline.over():
            return None
        # SIPP without collisions first: it is faster where it succeeds, which is mostly.
        path = _plan(graph, starts[a], goals[a], distance[a], state.taken, horizon, deadline, budget)
        if path is not None:
            state.add(a, path)
        elif max_failed is None:
            add_with_fewest_collisions(a)
        else:
            failed.append(a)
            if len(failed) > max_failed:
                return None
    for a in failed:
        add_with_fewest_collisions(a)
    return state


def _straight(graph: GridGraph, start: int, distance: Sequence[float]) -> Path:
    """A shortest path alone on the map, when the search ran out of states."""
    path = [start]
    while distance[path[-1]] > 0:
        path.append(min(graph.neighbours[path[-1]], key=lambda w: distance[w]))
    return path


def _colliding_neighbourhood(
    graph: GridGraph, state: _Collisions, colliding: Sequence[int], size: int, rng: random.Random
) -> list[int]:
    """A colliding agent at random and, breadth first, the agents it collides with, theirs, and
    so on; topped up with agents in the way of the first, those nearest in time to where it
    first collides first: standing on its path's cells one step before, at or after it passes,
    or held for good on a cell next to its path (the way round that the first would take, if
    they were not there); then with any agents, at random."""
    agent = rng.choice(colliding)
    chosen = [agent]
    seen = {agent}
    for a in chosen:
        for b in sorted(state.partners[a]):
            if b not in seen and len(chosen) < size:
                seen.add(b)
                chosen.append(b)
    taken = state.taken
    path = state.paths[agent]
    clash = next((t for t, v in enumerate(path) if state.partners[agent].intersection(taken.cells[(t, v)])), 0)
    near: dict[int, int] = {}  # agent in the way -> how many steps from the first collision
    for t, v in enumerate(path):
        for tt in (t - 1, t, t + 1):
            for b in taken.cells.get((tt, v), ()):
                near[b] = min(near.get(b, len(path)), abs(t - clash))
        for w in graph.neighbours[v]:
            since = taken.parked.get(w)
            if since is not None and since <= t + 1:
                b = taken.parker[w]
                near[b] = min(near.get(b, len(path)), abs(t - clash))
    extra = sorted(b for b in near if b not in seen)
    rng.shuffle(extra)
    extra.sort(key=near.__getitem__)  # nearest to where it first collides (stands on a partner's cell) first
    chosen += extra[: size - len(chosen)]
    seen.update(chosen)
    rest = [a for a in range(len(state.paths)) if a not in seen]
    return chosen + rng.sample(rest, min(size - len(chosen), len(rest)))
