"""Time-aware multi-vehicle planning on the facility map: safe-interval path planning (SIPP)
over a reservation table, prioritised, and the validator its plans go through.

Time is continuous (seconds). A vehicle's plan is a list of `Visit`s: the node, when it arrives
and when it leaves (the last visit leaves at infinity: the vehicle stays at its goal). What a
plan occupies, and so reserves, is what the controller's traffic manager makes a vehicle hold
when it executes the plan (it claims the next lane and node before it leaves a node, and lets
go of a node when it has reached the next one):
- a node from leaving the node before it (from arriving, for the start) until reaching the
  node after it (for the goal: until it leaves, usually never), widened by `clear_s`;
- a lane, in both directions, from leaving its start until reaching its end, so nobody meets it
  head-on (edge swap) or follows it onto it (following conflict);
- every element (node or lane) whose geometry comes closer than two footprint radii to an
  occupied one and shares no node with it (footprint conflict: on a validated map there are
  none, `maps.validate` enforces that clearance, but plans on other maps are checked too).

SIPP (Phillips and Likhachev, ICRA 2011) searches (node, safe interval) states with A* on the
compiled travel times, arriving at each as early as the reservations allow, waiting where
needed. Parking spots and chargers can be kept out of through traffic (`no_through`, say
`FacilityMap.no_through_nodes`).
Prioritised planning reserves each vehicle's plan before the next one is planned (like
every prioritised scheme it can fail where a joint plan exists).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from shapely import STRtree
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from maps import FacilityMap
from planners.graph import CompiledGraph

INF = math.inf
_EPS = 1e-6

Key = str  # "n:<node>" or "l:<a>|<b>" (sorted ends)


_node_keys: dict[str, Key] = {}
_lane_keys: dict[tuple[str, str], Key] = {}


def node_key(node: str) -> Key:
    # Memoised: tables are filled with every other vehicle's plan for each route planned.
    key = _node_keys.get(node)
    if key is None:
        key = _node_keys[node] = f"n:{node}"
    return key


def lane_key(a: str, b: str) -> Key:
    key = _lane_keys.get((a, b))
    if key is None:
        lo, hi = sorted((a, b))
        key = _lane_keys[(a, b)] = f"l:{lo}|{hi}"
    return key


@dataclass(frozen=True, slots=True)
class Visit:
    node: str
    arrive: float
    depart: float


Plan = list[Visit]


def near_elements(fmap: FacilityMap, radius: float) -> dict[Key, frozenset[Key]]:
    """Per node and lane, the elements closer than two footprint radii that share no node."""
    keys: list[Key] = []
    shapes: list[BaseGeometry] = []
    ends: list[frozenset[str]] = []
    for n in fmap.nodes:
        keys.append(node_key(n.id))
        shapes.append(Point(n.x, n.y))
        ends.append(frozenset((n.id,)))
    seen: set[Key] = set()
    for lane in fmap.lanes:
        key = lane_key(lane.start, lane.end)
        if key in seen:
            continue
        seen.add(key)
        keys.append(key)
        shapes.append(fmap.lane_lines[lane.id])
        ends.append(frozenset((lane.start, lane.end)))
    tree = STRtree(shapes)
    near: dict[Key, set[Key]] = {k: set() for k in keys}
    for i, j in zip(*tree.query(shapes, predicate="dwithin", distance=2 * radius - _EPS), strict=True):
        if i != j and not ends[i] & ends[j]:
            near[keys[i]].add(keys[j])
    return {k: frozenset(v) for k, v in near.items()}


def occupancy(plan: Plan, clear_s: float) -> list[tuple[Key, float, float]]:
    """(element, from, until) that a plan occupies, before footprint spreading."""
    out: list[tuple[Key, float, float]] = []
    if not plan:
        return out
    begin = plan[0].arrive
    for visit, after in itertools.pairwise(plan):
        out.append((node_key(visit.node), begin, after.arrive + clear_s))
        out.append((lane_key(visit.node, after.node), visit.depart, after.arrive))
        begin = visit.depart - clear_s
    last = plan[-1]
    out.append((node_key(last.node), begin, last.depart + clear_s))
    return out


@dataclass
class ReservationTable:
    """Reserved intervals per element, each with the vehicle that holds it.

    Intervals are appended as they come and sorted when an element is first read (a table is
    filled with every other vehicle's plan, then searched: one sort per element, not an ordered
    insert per interval); an element's safe intervals are kept until it changes."""

    near: dict[Key, frozenset[Key]]
    clear_s: float
    held: dict[Key, list[tuple[float, float, int]]] = field(default_factory=dict)
    _touched: dict[int, set[Key]] = field(default_factory=dict)
    _unsorted: set[Key] = field(default_factory=set)
    _gaps: dict[Key, list[tuple[float, float]]] = field(default_factory=dict)

    def reserve(self, agent: int, plan: Plan) -> None:
        self._add(agent, occupancy(plan, self.clear_s))

    def hold(self, agent: int, node: str, begin: float = 0.0, until: float = INF) -> None:
        """The agent stands at `node` from `begin` until `until`."""
        self._add(agent, [(node_key(node), begin, until)])

    def release(self, agent: int) -> None:
        """Drop everything the agent holds."""
        for k in self._touched.pop(agent, ()):
            self.held[k] = [item for item in self.held[k] if item[2] != agent]
            self._gaps.pop(k, None)

    def _add(self, agent: int, items: list[tuple[Key, float, float]]) -> None:
        # The hot loop of filling a table: locals, and near elements only where there are any.
        touched = self._touched.setdefault(agent, set())
        held, near, unsorted, gaps = self.held, self.near, self._unsorted, self._gaps
        for key, begin, end in items:
            item = (begin, end, agent)
            spread = near.get(key)
            for k in (key, *spread) if spread else (key,):
                intervals = held.get(k)
                if intervals is None:
                    held[k] = [item]
                else:
                    intervals.append(item)
                    unsorted.add(k)  # a single interval is in order
                touched.add(k)
                if gaps:
                    gaps.pop(k, None)

    def intervals(self, key: Key) -> list[tuple[float, float, int]]:
        """The element's reserved (from, until, agent), in order."""
        held = self.held.get(key)
        if held is None:
            return []
        if key in self._unsorted:
            held.sort()
            self._unsorted.discard(key)
        return held

    def gaps(self, key: Key) -> list[tuple[float, float]]:
        """Safe intervals of an element: the times nobody holds it."""
        cached = self._gaps.get(key)
        if cached is not None:
            return cached
        out: list[tuple[float, float]] = []
        start = -INF
        for begin, end, _ in self.intervals(key):
            if begin > start:
                out.append((start, begin))
            start = max(start, end)
        if start < INF:
            out.append((start, INF))
        self._gaps[key] = out
        return out

    def free_from(self, key: Key, begin: float, length: float) -> float:
        """The earliest time >= begin from which the element is free for `length` seconds."""
        t = begin
        for b, e, _ in self.intervals(key):
            if b < t + length and e > t:
                t = e
        return t


@dataclass(order=True)
class _State:
    f: float
    arrive: float
    tie: int
    node: str = field(compare=False)
    gap: int = field(compare=False)
    parent: _State | None = field(compare=False, default=None)
    left_parent: float = field(compare=False, default=0.0)


def sipp(
    graph: CompiledGraph,
    table: ReservationTable,
    start: str,
    goal: str,
    start_time: float = 0.0,
    no_through: frozenset[str] = frozenset(),
    stay: float = INF,
    start_heading: float | None = None,
) -> Plan | None:
    """Earliest-arrival plan from start to goal that stays at the goal for `stay` seconds (for
    good by default), or None. Nodes in `no_through` are entered only as the goal. A vehicle
    that turns on the spot and faces `start_heading` (radians) at the start turns there first."""
    clear = table.clear_s
    goal_index = graph.index[goal]
    counter = itertools.count()

    def h(node: str) -> float:
        return float(graph.travel_time[graph.index[node], goal_index])

    start_gaps = table.gaps(node_key(start))
    first = next((i for i, (b, e) in enumerate(start_gaps) if b <= start_time + _EPS and e > start_time), None)
    if first is None or not math.isfinite(h(start)):
        return None
    queue = [_State(start_time + h(start), start_time, next(counter), start, first)]
    done: set[tuple[str, int]] = set()
    while queue:
        state = heapq.heappop(queue)
        if (state.node, state.gap) in done:
            continue
        done.add((state.node, state.gap))
        here_end = table.gaps(node_key(state.node))[state.gap][1]
        if state.node == goal and here_end >= state.arrive + stay + clear:
            return _unwind(state, state.arrive + stay)
        for nxt, seconds in graph.successors[state.node]:
            if nxt in no_through and nxt != goal:
                continue
            # The vehicle holds this node until it has reached the next one, and the next one
            # from the moment it leaves this one.
            leave_by = here_end - clear - seconds
            lane = lane_key(state.node, nxt)
            # A vehicle that turns on the spot stands here while it turns towards the next lane.
            before = state.parent.node if state.parent else None
            turned = state.arrive + graph.turn_seconds(before, state.node, nxt, None if before else start_heading)
            for j, (g_begin, g_end) in enumerate(table.gaps(node_key(nxt))):
                if g_end <= state.arrive + seconds + clear or (nxt, j) in done:
                    continue
                depart = table.free_from(lane, max(turned, g_begin + clear), seconds)
                if depart > leave_by + _EPS:
                    break  # later intervals of nxt need an even later departure
                arrive = depart + seconds
                if arrive + clear >= g_end or depart - clear < g_begin - _EPS:
                    continue
                child = _State(arrive + h(nxt), arrive, next(counter), nxt, j, state, depart)
                heapq.heappush(queue, child)
    return None


def _unwind(state: _State, depart: float) -> Plan:
    visits: list[Visit] = []
    walk: _State | None = state
    while walk is not None:
        visits.append(Visit(walk.node, walk.arrive, depart))
        depart = walk.left_parent
        walk = walk.parent
    visits.reverse()
    return visits


@dataclass(frozen=True)
class PrioritisedResult:
    plans: list[Plan | None]  # None for a vehicle that could not be planned

    @property
    def solved(self) -> bool:
        return all(p is not None for p in self.plans)


def plan_prioritised(
    graph: CompiledGraph,
    near: dict[Key, frozenset[Key]],
    clear_s: float,
    starts: Sequence[str],
    goals: Sequence[str],
    start_time: float = 0.0,
    no_through: frozenset[str] = frozenset(),
    restarts: int = 5,
    start_hold_s: float = 10.0,
) -> PrioritisedResult:
    """Plan vehicles one after another; each plan is reserved before the next is made. A vehicle
    not planned yet is taken to stand at its start for `start_hold_s` (earlier ones wait for it
    to get out of the way rather than drive into it); a later vehicle leaves its start before an
    earlier one comes by, or fails. When some fail, plan again with the failed ones first (up to
    `restarts` times) and keep the round that planned the most. A vehicle without a plan is taken
    to hold its start for good."""
    order = list(range(len(starts)))
    best: list[Plan | None] = [None] * len(starts)
    for _ in range(restarts + 1):
        table = ReservationTable(near, clear_s)
        for agent in order:
            table.hold(agent, starts[agent], start_time, start_time + start_hold_s)
        plans: list[Plan | None] = [None] * len(starts)
        for agent in order:
            table.release(agent)
            plan = sipp(graph, table, starts[agent], goals[agent], start_time, no_through)
            if plan is None:
                table.hold(agent, starts[agent], start_time)
            else:
                table.reserve(agent, plan)
            plans[agent] = plan
        if sum(p is not None for p in plans) > sum(p is not None for p in best):
            best = plans
        failed = [a for a in order if plans[a] is None]
        if not failed:
            break
        order = failed + [a for a in order if plans[a] is not None]
    return PrioritisedResult(best)


def validate_plans(
    graph: CompiledGraph,
    near: dict[Key, frozenset[Key]],
    clear_s: float,
    starts: Sequence[str],
    goals: Sequence[str],
    plans: Sequence[Plan],
    start_headings: Sequence[float | None] | None = None,
) -> list[str]:
    """Every problem of a set of timed plans, by vehicle and element; empty when valid. With
    `start_headings`, a vehicle that turns on the spot must turn at its start too."""
    problems: list[str] = []
    for agent, plan in enumerate(plans):
        if not plan:
            problems.append(f"vehicle {agent}: empty plan")
            continue
        if plan[0].node != starts[agent]:
            problems.append(f"vehicle {agent}: starts at {plan[0].node}, not {starts[agent]}")
        if plan[-1].node != goals[agent] or plan[-1].depart != INF:
            problems.append(f"vehicle {agent}: does not stay at its goal {goals[agent]}")
        for visit in plan:
            if visit.depart < visit.arrive - _EPS:
                problems.append(f"vehicle {agent}: leaves {visit.node} before arriving")
        for k, (a, b) in enumerate(itertools.pairwise(plan)):
            heading = start_headings[agent] if start_headings is not None and k == 0 else None
            turn = graph.turn_seconds(plan[k - 1].node if k else None, a.node, b.node, heading)
            if a.depart < a.arrive + turn - _EPS:
                problems.append(f"vehicle {agent}: leaves {a.node} before it has turned on the spot")
            seconds = graph.edge_seconds(a.node, b.node)
            if not math.isfinite(seconds):
                problems.append(f"vehicle {agent}: no lane from {a.node} to {b.node}")
            elif b.arrive < a.depart + seconds - _EPS:
                problems.append(f"vehicle {agent}: drives {a.node}->{b.node} faster than the lane allows")
    spans: dict[Key, list[tuple[float, float, int, Key]]] = {}
    direction: dict[tuple[int, Key, float], tuple[str, str]] = {}
    for agent, plan in enumerate(plans):
        for k, (key, begin, end) in enumerate(occupancy(plan, clear_s)):
            spans.setdefault(key, []).append((begin, end, agent, key))
            if key.startswith("l:"):
                visit = plan[k // 2]
                direction[(agent, key, begin)] = (visit.node, plan[k // 2 + 1].node)
            for other in near.get(key, ()):
                spans.setdefault(other, []).append((begin, end, agent, key))
    reported: set[tuple[int, int, Key]] = set()
    for key, items in spans.items():
        items.sort()
        for (b1, e1, a1, k1), (b2, _, a2, k2) in itertools.combinations(items, 2):
            if b2 >= e1 - _EPS:
                continue
            if a1 == a2 or (min(a1, a2), max(a1, a2), key) in reported:
                continue
            if k1 != key and k2 != key:
                continue  # both only near this element: reported where one of them really is
            reported.add((min(a1, a2), max(a1, a2), key))
            what = key[2:].replace("|", "-")
            if k1 != k2:
                kind = "footprint conflict"
            elif key.startswith("n:"):
                kind = "vertex conflict"
            else:
                same = direction.get((a1, key, b1)) == direction.get((a2, key, b2))
                kind = "following conflict" if same else "swap conflict"
            problems.append(f"{kind} between vehicles {min(a1, a2)} and {max(a1, a2)} at {what} ({b2:.1f} s)")
    return problems
