"""Traffic manager: claims nodes, lanes and single-vehicle zones ahead of each vehicle, frees
them behind it, releases the path in segments, and makes vehicles with a timed plan take their
turns at nodes in the planned order.

Rules that make this safe on a map that passed `maps.validate` (which enforces clearance between
elements that share no node):
- a vehicle holds the node it stands on, and before moving on it claims the next lane and node;
  a two-way lane is one resource for both directions, so no two vehicles meet head-on on it;
- a run of two-way lanes (a corridor or a dead-end spur) is claimed in one go together with its
  exit node, so nobody ever waits inside a corridor or at its mouth for someone coming out;
- a single-vehicle zone is held while the vehicle holds any node or lane inside it.
- a vehicle whose route comes with the times of a conflict-free plan (`planners.sipp`) claims
  each node of it only in its turn: when every vehicle planned to enter that node before it has
  done so (`planners.precedence`). Delays then make vehicles wait, not deadlock. (The corridor
  rule still applies: plans do not foresee when a vehicle standing in a dead end will leave.)
A vehicle without a plan (planning failed, or a detour) only claims. Circular waits that this
leaves possible, and those from vehicles that stop where no plan foresaw it, are found by
`wait_cycles`; the core resolves them by routing one vehicle around or aside (`free_for` says
which steps it could take now).

Concurrency: owned by the core; called only from the core's single writer.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry import Point

from maps import FacilityMap, ZoneKind
from planners.precedence import entry_times
from planners.sipp import Plan

Resource = str  # "node:<id>", "lane:<a>|<b>" (sorted ends), "zone:<id>"
OPERATOR = "operator"  # holder of what an operator closed


@dataclass(frozen=True, slots=True)
class WaitReason:
    """Why a vehicle cannot move on: the first resource it could not claim and who holds it."""

    resource: Resource
    holder: str
    turn: bool = False  # the resource is free, but `holder` is planned to enter it first

    @property
    def cause(self) -> str:
        """What is in the way: a node, lane or zone someone holds, or another vehicle's turn."""
        return "turn" if self.turn else self.resource.partition(":")[0]

    def describe(self) -> str:
        kind, _, name = self.resource.partition(":")
        what = {"node": "node", "lane": "lane", "zone": "single-vehicle zone"}.get(kind, kind)
        if self.turn:
            return f"waits for {self.holder} to pass {what} {name} first, as planned"
        if self.holder == OPERATOR:
            return f"{what} {name.replace('|', '-')} closed by operator"
        return f"waits for {self.holder} to free {what} {name.replace('|', '-')}"


@dataclass
class _Route:
    nodes: list[str]
    position: int = 0  # index of the last node reached
    released: int = 0  # index of the last node released (claimed)


def node_resource(node: str) -> Resource:
    return f"node:{node}"


def lane_resource(a: str, b: str) -> Resource:
    lo, hi = sorted((a, b))
    return f"lane:{lo}|{hi}"


class TrafficManager:
    """Resource claims per vehicle. `lookahead` is how many nodes beyond its position a vehicle may hold."""

    def __init__(self, fmap: FacilityMap, lookahead: int = 3) -> None:
        self._lookahead = lookahead
        self._two_way = {(lane.start, lane.end) for lane in fmap.lanes if lane.two_way}
        self._two_way |= {(b, a) for a, b in self._two_way}
        self._zones_of: dict[Resource, tuple[Resource, ...]] = {}
        zones = fmap.zones_of_kind(ZoneKind.SINGLE_VEHICLE)
        for node in fmap.nodes:
            inside = tuple(f"zone:{z.id}" for z in zones if z.polygon.intersects(Point(node.x, node.y)))
            if inside:
                self._zones_of[node_resource(node.id)] = inside
        for lane in fmap.lanes:
            line = fmap.lane_lines[lane.id]
            inside = tuple(f"zone:{z.id}" for z in zones if z.polygon.intersects(line))
            if inside:
                self._zones_of[lane_resource(lane.start, lane.end)] = inside
        self._holder: dict[Resource, str] = {}
        self._held: dict[str, set[Resource]] = {}
        self._closed: set[Resource] = set()
        self._routes: dict[str, _Route] = {}
        self._turns: dict[str, list[tuple[float, str]]] = {}  # node -> (planned entry, vehicle) to come
        self._turns_of: dict[str, list[str]] = {}  # vehicle -> nodes it has turns at
        self.waiting: dict[str, WaitReason] = {}
        self.turns_dropped: set[str] = set()  # vehicles whose turns went: who waited on them may go

    # ---- queries ---------------------------------------------------------------------------

    def holder(self, resource: Resource) -> str | None:
        return self._holder.get(resource)

    def held_by(self, vehicle_id: str) -> frozenset[Resource]:
        return frozenset(self._held.get(vehicle_id, ()))

    def released_end(self, vehicle_id: str) -> str:
        """The node where the vehicle will stop if nothing more is released."""
        route = self._routes[vehicle_id]
        return route.nodes[route.released]

    def remaining(self, vehicle_id: str) -> tuple[list[str], list[str]]:
        """(released nodes still ahead, planned nodes not yet released) of the vehicle's route."""
        route = self._routes[vehicle_id]
        return (
            route.nodes[route.position + 1 : route.released + 1],
            route.nodes[route.released + 1 :],
        )

    def at_goal(self, vehicle_id: str) -> bool:
        route = self._routes[vehicle_id]
        return route.position == len(route.nodes) - 1

    # ---- changes ---------------------------------------------------------------------------

    def place(self, vehicle_id: str, node: str, ahead: Sequence[str] = ()) -> None:
        """Put a vehicle on the map standing at `node` (start-up, or a vehicle that reports in).
        `ahead` are nodes already released to it (by an earlier run of the controller): it holds
        them, and the lanes to them, until it reports passing them."""
        nodes = [node, *ahead]
        wanted: list[Resource] = [node_resource(node)]
        for a, b in itertools.pairwise(nodes):
            wanted += [lane_resource(a, b), node_resource(b)]
        wanted += [z for r in list(wanted) for z in self._zones_of.get(r, ())]
        for resource in wanted:
            holder = self._holder.get(resource)
            if holder is not None and holder != vehicle_id:
                raise ValueError(f"vehicle {vehicle_id} placed on {resource} held by {holder}")
        self._held[vehicle_id] = set()
        self._claim(vehicle_id, wanted)
        self._routes[vehicle_id] = _Route(nodes, position=0, released=len(ahead))

    def set_route(self, vehicle_id: str, nodes: list[str], entries: list[float] | None = None) -> None:
        """Give the vehicle a new route starting at its released end; released nodes are kept.
        `entries`, from a conflict-free plan, are when it is planned to enter each node after
        the first: it will take its turn there among the other planned vehicles."""
        route = self._routes[vehicle_id]
        if nodes[0] != route.nodes[route.released]:
            raise ValueError(f"vehicle {vehicle_id}: new route starts at {nodes[0]}, not {route.nodes[route.released]}")
        if entries is not None and len(entries) != len(nodes) - 1:
            raise ValueError(f"vehicle {vehicle_id}: {len(entries)} entry times for {len(nodes) - 1} nodes")
        kept = route.nodes[route.position : route.released]
        self._routes[vehicle_id] = _Route(kept + nodes, position=0, released=len(kept))
        self.waiting.pop(vehicle_id, None)
        self.drop_turns(vehicle_id)
        for node, when in zip(nodes[1:], entries or (), strict=False):
            turns = self._turns.setdefault(node, [])
            turns.insert(bisect.bisect_right([t for t, _ in turns], when), (when, vehicle_id))
            self._turns_of.setdefault(vehicle_id, []).append(node)

    def turn_order(self) -> dict[str, list[str]]:
        """Per node, the vehicles still to take their turn there, in order."""
        return {node: [v for _, v in turns] for node, turns in self._turns.items()}

    def retime_turns(self, expected: Mapping[str, Plan]) -> None:
        """Set the times of the turns to when the vehicles are now expected to take them (see
        `planners.precedence.project`); the order stays as it is."""
        claims: dict[tuple[str, str], list[float]] = {}
        for vid in self._turns_of:  # only vehicles with turns have times to set
            for node, when in entry_times(expected.get(vid, [])):
                claims.setdefault((vid, node), []).append(when)
        for node, turns in self._turns.items():
            seen: dict[str, int] = {}
            for i, (_, vid) in enumerate(turns):
                times = claims.get((vid, node), ())
                k = seen.get(vid, 0)
                seen[vid] = k + 1
                turns[i] = (times[k] if k < len(times) else math.inf, vid)

    def drop_turns(self, vehicle_id: str) -> None:
        """The vehicle no longer follows its plan (stopped, re-routed, out of order): it gives up
        its turns, and nobody waits for it to come by first."""
        nodes = self._turns_of.pop(vehicle_id, None)
        if not nodes:
            return
        for node in set(nodes):
            left = [t for t in self._turns[node] if t[1] != vehicle_id]
            if left:
                self._turns[node] = left
            else:
                del self._turns[node]
        self.turns_dropped.add(vehicle_id)

    def next_turn(self, vehicle_id: str) -> tuple[str, float] | None:
        """The next node the vehicle is to take its turn at, and when its plan enters it."""
        nodes = self._turns_of.get(vehicle_id)
        if not nodes:
            return None
        return nodes[0], next(t for t, v in self._turns[nodes[0]] if v == vehicle_id)

    def planned(self, vehicle_id: str) -> bool:
        """Whether the vehicle has turns still to take (its route came from a plan)."""
        return bool(self._turns_of.get(vehicle_id))

    def relocate(self, vehicle_id: str, node: str) -> None:
        """A standing vehicle is re-placed at `node` (initPosition): it drops every claim and
        holds only the new node, which nobody else may hold."""
        route = self._routes[vehicle_id]
        if route.released != route.position:
            raise ValueError(f"vehicle {vehicle_id} still has released path ahead; it must stand still")
        holder = self._holder.get(node_resource(node))
        if holder is not None and holder != vehicle_id:
            raise ValueError(f"node {node} is held by {holder}")
        for r in self._held.pop(vehicle_id, set()):
            self._let_go(r)
        self.waiting.pop(vehicle_id, None)
        self.drop_turns(vehicle_id)
        self.place(vehicle_id, node)

    def close(self, resource: Resource) -> None:
        """Close a lane (or node): nobody may claim it; a vehicle holding it keeps it until it
        has passed, then it closes."""
        self._closed.add(resource)
        if resource not in self._holder:
            self._holder[resource] = OPERATOR

    def reopen(self, resource: Resource) -> None:
        self._closed.discard(resource)
        if self._holder.get(resource) == OPERATOR:
            del self._holder[resource]

    def closed(self) -> frozenset[Resource]:
        return frozenset(self._closed)

    def planned_through(self, resource: Resource) -> list[str]:
        """Vehicles whose route still ahead (released or not) uses `resource`."""
        found = []
        for vid, route in self._routes.items():
            ahead = route.nodes[route.position :]
            if any(lane_resource(a, b) == resource for a, b in itertools.pairwise(ahead)):
                found.append(vid)
        return found

    def free_for(self, vehicle_id: str, a: str, b: str) -> bool:
        """Whether the vehicle could claim the step a -> b now: lane, node b and their zones."""
        for r in (lane_resource(a, b), node_resource(b)):
            for needed in (r, *self._zones_of.get(r, ())):
                if self._holder.get(needed, vehicle_id) != vehicle_id:
                    return False
        return True

    def route_nodes(self, vehicle_id: str) -> list[str]:
        """The nodes still ahead of the vehicle, released or not, from where it stands."""
        route = self._routes[vehicle_id]
        return route.nodes[route.position :]

    def route_goal(self, vehicle_id: str) -> str:
        return self._routes[vehicle_id].nodes[-1]

    def stop_at(self, vehicle_id: str, node: str, ahead: Sequence[str] = ()) -> None:
        """The vehicle stopped for good (a cancelled drive) at `node`, or past it on the way to
        `ahead` (nodes of its released path it stands short of): free everything beyond; what it
        stands on and the way to `ahead` stay its own until it reports passing them."""
        route = self._routes[vehicle_id]
        if route.nodes[route.position] != node:
            raise ValueError(f"vehicle {vehicle_id} stopped at {node} but stands at {route.nodes[route.position]}")
        released = route.nodes[route.position : route.released + 1]
        if list(ahead) != released[1 : 1 + len(ahead)]:
            raise ValueError(f"vehicle {vehicle_id} stopped short of {list(ahead)}, not on its released path")
        self._routes[vehicle_id] = _Route([node, *ahead], position=0, released=len(ahead))
        self.waiting.pop(vehicle_id, None)
        self.drop_turns(vehicle_id)
        self._free_behind(vehicle_id)

    def reached(self, vehicle_id: str, node: str) -> None:
        """The vehicle reached `node`: advance along the route and free what lies behind."""
        route = self._routes[vehicle_id]
        ahead = route.nodes[route.position + 1 : route.released + 1]
        if node not in ahead:
            raise ValueError(f"vehicle {vehicle_id} reported {node}, which is not on its released path {ahead}")
        route.position += 1 + ahead.index(node)
        self._free_behind(vehicle_id)

    def release(self, vehicle_id: str) -> list[str]:
        """Claim as far ahead as rules and lookahead allow; return the newly released nodes."""
        route = self._routes[vehicle_id]
        new: list[str] = []
        last = len(route.nodes) - 1
        planned = self.planned(vehicle_id)
        while route.released < last and route.released - route.position < self._lookahead:
            end = route.released + 1
            while end < last and (route.nodes[end], route.nodes[end + 1]) in self._two_way:
                end += 1
            wanted: list[Resource] = []
            for k in range(route.released, end):
                a, b = route.nodes[k], route.nodes[k + 1]
                for r in (lane_resource(a, b), node_resource(b)):
                    wanted += [r, *self._zones_of.get(r, ())]
            blocker = next((r for r in wanted if self._holder.get(r, vehicle_id) != vehicle_id), None)
            if blocker is not None:
                self.waiting[vehicle_id] = WaitReason(blocker, self._holder[blocker])
                break
            run = route.nodes[route.released + 1 : end + 1]
            turn = next(((n, v) for n in run if (v := self._first_turn(vehicle_id, n)) is not None), None)
            if planned and turn is not None:
                self.waiting[vehicle_id] = WaitReason(node_resource(turn[0]), turn[1], turn=True)
                break
            for node in run if planned else ():
                self._take_turn(vehicle_id, node)
            self._claim(vehicle_id, wanted)
            new += route.nodes[route.released + 1 : end + 1]
            route.released = end
        else:
            self.waiting.pop(vehicle_id, None)
        return new

    def stopped_waits(self) -> dict[str, WaitReason]:
        """Waits of vehicles that stand still for them (nothing released ahead)."""
        return {v: w for v, w in self.waiting.items() if self._routes[v].released == self._routes[v].position}

    def wait_cycles(self, also: Mapping[str, Collection[str]] | None = None) -> list[list[str]]:
        """Circular waits among stopped vehicles (each waits for a resource the next one holds),
        as the vehicle sets of the wait-for graph's strongly connected components.

        A vehicle that still has released nodes ahead is driving and will free what it holds
        behind it, so its wait is not (yet) part of a deadlock. `also` adds waits the traffic
        manager cannot see: an idle vehicle that must make way but whose every exit is held
        waits for all the holders (the caller knows who must make way).
        """
        waits_for: dict[str, set[str]] = {v: {w.holder} for v, w in self.stopped_waits().items()}
        for v, holders in (also or {}).items():
            waits_for.setdefault(v, set()).update(holders)
        # Nearly always the waits are chains ending at a vehicle that waits for nobody: peeling
        # those off leaves nothing, and the components are computed only when a cycle is left.
        cyclic = _peel_sinks(waits_for)
        return [c for c in _components(cyclic) if len(c) > 1 or c[0] in cyclic.get(c[0], ())] if cyclic else []

    # ---- internals -------------------------------------------------------------------------

    def _first_turn(self, vehicle_id: str, node: str) -> str | None:
        """Who must enter `node` before the vehicle does, if anyone; None if it is its turn or
        it has no turn there."""
        turns = self._turns.get(node)
        if not turns or node not in self._turns_of.get(vehicle_id, ()):
            return None
        return None if turns[0][1] == vehicle_id else turns[0][1]

    def _take_turn(self, vehicle_id: str, node: str) -> None:
        mine = self._turns_of.get(vehicle_id)
        if mine is None or node not in mine:
            return
        mine.remove(node)
        if not mine:
            del self._turns_of[vehicle_id]
        turns = self._turns[node]
        turns.pop(next(i for i, t in enumerate(turns) if t[1] == vehicle_id))
        if not turns:
            del self._turns[node]

    def _claim(self, vehicle_id: str, resources: list[Resource]) -> None:
        for r in resources:
            self._holder[r] = vehicle_id
            self._held[vehicle_id].add(r)

    def _let_go(self, resource: Resource) -> None:
        if resource in self._closed:
            self._holder[resource] = OPERATOR  # a closure waited for the vehicle that held it
        else:
            del self._holder[resource]

    def _free_behind(self, vehicle_id: str) -> None:
        route = self._routes[vehicle_id]
        keep: set[Resource] = {node_resource(route.nodes[route.position])}
        for k in range(route.position, route.released):
            a, b = route.nodes[k], route.nodes[k + 1]
            keep |= {lane_resource(a, b), node_resource(b)}
        for r in list(keep):
            keep.update(self._zones_of.get(r, ()))
        for r in self._held[vehicle_id] - keep:
            self._let_go(r)
        self._held[vehicle_id] &= keep
        # Drop the part of the route behind the vehicle so indices stay small.
        del route.nodes[: route.position]
        route.released -= route.position
        route.position = 0


def _peel_sinks(edges: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    """The graph without every vertex from which no cycle can be reached (repeatedly drop those
    with no edge to a vertex left): what is left is empty exactly when the graph has no cycle,
    and it holds every cycle."""
    left = {v: set(targets) for v, targets in edges.items()}
    while True:
        sinks = [v for v, targets in left.items() if not targets.intersection(left)]
        if not sinks:
            return left
        for v in sinks:
            del left[v]


def _components(edges: Mapping[str, Collection[str]]) -> list[list[str]]:
    """Strongly connected components of a directed graph, each sorted, in sorted order."""
    names = sorted(set(edges).union(*edges.values()))
    if not names:
        return []
    index = {name: i for i, name in enumerate(names)}
    pairs = [(index[v], index[w]) for v, targets in edges.items() for w in targets]
    rows, cols = zip(*pairs, strict=True) if pairs else ((), ())
    graph = csr_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(graph, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for name, label in zip(names, labels, strict=True):
        groups.setdefault(int(label), []).append(name)
    return sorted(groups.values())
