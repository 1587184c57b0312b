"""The facility map compiled once into arrays: directed edges, travel times, all-pairs tables.

Travel time on a lane is length / speed, with speed the least of the lane's limit, the speed-limit
zones the lane crosses and the vehicle type's top speed. Acceleration and turning on the spot are
left out of the tables (they rank options; the simulator and the vehicles drive the real profile;
SIPP adds the turns to its timed plans, `turn_seconds`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from maps import FacilityMap, ZoneKind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

NO_PATH = -9999  # scipy's predecessor marker for "no predecessor"


class NoPathError(ValueError):
    """No drivable path between two nodes."""


@dataclass(frozen=True, eq=False)
class CompiledGraph:
    """Directed edge arrays plus all-pairs travel times and predecessors for one map and vehicle type.

    `travel_time[i, j]` is seconds from node index i to node index j (inf when unreachable);
    `predecessor[i, j]` is the node before j on a fastest path from i.
    """

    node_ids: tuple[str, ...]
    index: dict[str, int]
    xy: FloatArray
    edge_from: IntArray
    edge_to: IntArray
    edge_length: FloatArray
    edge_time: FloatArray
    edge_lane: tuple[str, ...]
    travel_time: FloatArray
    predecessor: IntArray
    lane_between: dict[tuple[int, int], str]
    seconds_between: dict[tuple[int, int], float]
    turn_rate_deg_s: float | None = None  # the vehicle type turns on the spot at this rate (None: while driving)

    def time(self, a: str, b: str) -> float:
        return float(self.travel_time[self.index[a], self.index[b]])

    def shortest_path(self, a: str, b: str) -> list[str]:
        """Node ids of a fastest path from a to b, both included; raises NoPathError."""
        i, j = self.index[a], self.index[b]
        if not np.isfinite(self.travel_time[i, j]):
            raise NoPathError(f"no path from {a} to {b}")
        path = [j]
        while path[-1] != i:
            path.append(int(self.predecessor[i, path[-1]]))
        return [self.node_ids[k] for k in reversed(path)]

    @cached_property
    def successors(self) -> dict[str, list[tuple[str, float]]]:
        """Per node, the nodes one lane ahead and the seconds to get there."""
        out: dict[str, list[tuple[str, float]]] = {n: [] for n in self.node_ids}
        for a, b, t in zip(self.edge_from, self.edge_to, self.edge_time, strict=True):
            out[self.node_ids[a]].append((self.node_ids[b], float(t)))
        return out

    def paths_from(self, start: str, blocked: Callable[[str, str], bool]) -> Iterator[list[str]]:
        """Fastest paths from `start` to every node reachable without driving a blocked step
        (a, b), nearest first (Dijkstra); for routes around what others hold right now."""
        before: dict[str, str | None] = {start: None}
        done: set[str] = set()
        queue: list[tuple[float, str]] = [(0.0, start)]
        best = {start: 0.0}
        while queue:
            seconds, node = heapq.heappop(queue)
            if node in done:
                continue
            done.add(node)
            path = [node]
            while (prev := before[path[-1]]) is not None:
                path.append(prev)
            yield path[::-1]
            for nxt, step in self.successors[node]:
                if nxt in done or blocked(node, nxt):
                    continue
                if seconds + step < best.get(nxt, float("inf")):
                    best[nxt] = seconds + step
                    before[nxt] = node
                    heapq.heappush(queue, (seconds + step, nxt))

    def path_time(self, nodes: list[str]) -> float:
        """Travel time along consecutive nodes, over the lanes that connect them."""
        return sum(self.edge_seconds(a, b) for a, b in itertools.pairwise(nodes))

    def edge_seconds(self, a: str, b: str) -> float:
        return self._seconds_by_name.get((a, b), math.inf)

    @cached_property
    def _seconds_by_name(self) -> dict[tuple[str, str], float]:
        # Keyed by node ids: traffic projections ask for every step of every vehicle's route.
        ids = self.node_ids
        return {(ids[i], ids[j]): s for (i, j), s in self.seconds_between.items()}

    def turn_seconds(self, before: str | None, at: str, after: str, heading: float | None = None) -> float:
        """Seconds a vehicle that turns on the spot stands at `at` turning from the direction
        before->at (or, with no `before`, from `heading`, radians as VDA 5050's theta) to
        at->after; 0 for one that turns while driving, or with no direction yet."""
        if self.turn_rate_deg_s is None:
            return 0.0
        if before is not None:
            heading = self.heading(before, at)
        if heading is None:
            return 0.0
        turn = math.remainder(self.heading(at, after) - heading, 2 * math.pi)
        return abs(math.degrees(turn)) / self.turn_rate_deg_s

    def heading(self, a: str, b: str) -> float:
        """The direction from node a to node b, radians counter-clockwise from the x axis."""
        pa, pb = self.xy[self.index[a]], self.xy[self.index[b]]
        return math.atan2(pb[1] - pa[1], pb[0] - pa[0])


def lane_speeds(fmap: FacilityMap, top_speed: float) -> dict[str, float]:
    """Effective speed per lane id: lane limit, speed-limit zones crossed, vehicle top speed."""
    limits = fmap.zones_of_kind(ZoneKind.SPEED_LIMIT)
    speeds = {}
    for lane in fmap.lanes:
        line = fmap.lane_lines[lane.id]
        speed = min(lane.max_speed, top_speed)
        for zone in limits:
            if zone.speed_limit is not None and zone.polygon.intersects(line):
                speed = min(speed, zone.speed_limit)
        speeds[lane.id] = speed
    return speeds


def compile_map(
    fmap: FacilityMap, vehicle_type: str | None = None, closed_lanes: frozenset[str] = frozenset()
) -> CompiledGraph:
    """Compile the map for one vehicle type (default: the first listed), leaving out closed lanes."""
    vtype = fmap.vehicle_type_by_id[vehicle_type] if vehicle_type else fmap.vehicle_types[0]
    node_ids = tuple(n.id for n in fmap.nodes)
    index = {nid: i for i, nid in enumerate(node_ids)}
    xy = np.array([(n.x, n.y) for n in fmap.nodes], dtype=np.float64)
    speeds = lane_speeds(fmap, vtype.max_speed)

    # Keep the fastest lane per directed node pair; a sparse matrix would add duplicates up.
    best: dict[tuple[int, int], tuple[float, float, str]] = {}
    for lane in fmap.lanes:
        if lane.id in closed_lanes:
            continue
        seconds = lane.length / speeds[lane.id]
        pairs = [(index[lane.start], index[lane.end])]
        if lane.two_way:
            pairs.append((index[lane.end], index[lane.start]))
        for pair in pairs:
            if pair not in best or seconds < best[pair][1]:
                best[pair] = (lane.length, seconds, lane.id)
    pairs_sorted = sorted(best)
    edge_from = np.array([p[0] for p in pairs_sorted], dtype=np.int32)
    edge_to = np.array([p[1] for p in pairs_sorted], dtype=np.int32)
    edge_length = np.array([best[p][0] for p in pairs_sorted], dtype=np.float64)
    edge_time = np.array([best[p][1] for p in pairs_sorted], dtype=np.float64)
    n = len(node_ids)
    matrix = csr_matrix((edge_time, (edge_from, edge_to)), shape=(n, n))
    travel, pred = dijkstra(matrix, directed=True, return_predecessors=True)
    return CompiledGraph(
        node_ids=node_ids,
        index=index,
        xy=xy,
        edge_from=edge_from,
        edge_to=edge_to,
        edge_length=edge_length,
        edge_time=edge_time,
        edge_lane=tuple(best[p][2] for p in pairs_sorted),
        travel_time=travel,
        predecessor=pred.astype(np.int32),
        lane_between={p: best[p][2] for p in pairs_sorted},
        seconds_between={p: best[p][1] for p in pairs_sorted},
        turn_rate_deg_s=vtype.turn_rate_deg_s,
    )
