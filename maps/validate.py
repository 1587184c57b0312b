"""Semantic checks of a facility map: every problem found, each named by the ids involved.

The clearance rule exists for traffic control: the controller lets two vehicles hold two
different nodes or lanes at once, so any two map elements that do not share a node must be
far enough apart that two vehicles on them cannot touch (twice the largest footprint radius).
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable

from shapely import STRtree
from shapely.geometry import LineString, Point

from maps.model import FacilityMap, ZoneKind

_TOLERANCE = 1e-6


def validate_map(fmap: FacilityMap) -> list[str]:
    """Return every problem of the map as a sentence naming the elements; empty when valid."""
    problems: list[str] = []
    problems += _duplicate_ids(fmap)
    problems += _dangling_references(fmap)
    problems += _lane_lengths(fmap)
    problems += _zone_rules(fmap)
    problems += _load_types(fmap)
    if problems:
        # Geometry and reachability need resolvable references to say anything useful.
        return problems
    problems += _clearance(fmap)
    problems += _reachability(fmap)
    return problems


def _duplicates(kind: str, ids: Iterable[str]) -> list[str]:
    counts = Counter(ids)
    return [f"duplicate {kind} id '{i}' ({n} times)" for i, n in counts.items() if n > 1]


def _duplicate_ids(fmap: FacilityMap) -> list[str]:
    return (
        _duplicates("node", (n.id for n in fmap.nodes))
        + _duplicates("lane", (lane.id for lane in fmap.lanes))
        + _duplicates("station", (s.id for s in fmap.stations))
        + _duplicates("charger", (c.id for c in fmap.chargers))
        + _duplicates("parking", (p.id for p in fmap.parking))
        + _duplicates("zone", (z.id for z in fmap.zones))
        + _duplicates("vehicle type", (v.id for v in fmap.vehicle_types))
    )


def _dangling_references(fmap: FacilityMap) -> list[str]:
    nodes = fmap.node_by_id
    problems = []
    for lane in fmap.lanes:
        for end, node in (("from", lane.start), ("to", lane.end)):
            if node not in nodes:
                problems.append(f"lane {lane.id}: unknown node '{node}' ({end})")
    for owner, items in (("station", fmap.stations), ("charger", fmap.chargers), ("parking", fmap.parking)):
        for item in items:
            if item.node not in nodes:
                problems.append(f"{owner} {item.id}: on missing node '{item.node}'")
    return problems


def _lane_lengths(fmap: FacilityMap) -> list[str]:
    nodes = fmap.node_by_id
    problems = []
    for lane in fmap.lanes:
        if lane.start not in nodes or lane.end not in nodes:
            continue
        a, b = nodes[lane.start], nodes[lane.end]
        straight = Point(a.x, a.y).distance(Point(b.x, b.y))
        if lane.start == lane.end or straight < _TOLERANCE or lane.length < _TOLERANCE:
            problems.append(f"lane {lane.id}: zero length ({lane.start} to {lane.end})")
        elif lane.length < straight - _TOLERANCE:
            problems.append(
                f"lane {lane.id}: length {lane.length:.2f} m is shorter than the straight line {straight:.2f} m"
            )
    return problems


def _zone_rules(fmap: FacilityMap) -> list[str]:
    problems = []
    for zone in fmap.zones:
        if not zone.polygon.is_valid or zone.polygon.area <= 0:
            problems.append(f"zone {zone.id}: polygon is not a valid area")
            continue
        if zone.kind is ZoneKind.SPEED_LIMIT and zone.speed_limit is None:
            problems.append(f"zone {zone.id}: speed-limit zone without speed_limit")
        if zone.kind is not ZoneKind.KEEP_OUT:
            continue
        for node in fmap.nodes:
            if zone.polygon.intersects(Point(node.x, node.y)):
                problems.append(f"node {node.id}: inside keep-out zone {zone.id}")
        for lane in fmap.lanes:
            line = _lane_line(fmap, lane.start, lane.end)
            if line is not None and zone.polygon.intersection(line).length > _TOLERANCE:
                problems.append(f"lane {lane.id}: crosses keep-out zone {zone.id}")
    return problems


def _load_types(fmap: FacilityMap) -> list[str]:
    carried = set().union(*(v.load_types for v in fmap.vehicle_types)) if fmap.vehicle_types else set()
    return [
        f"station {s.id}: handles no load a vehicle type can carry ({', '.join(sorted(s.load_types))})"
        for s in fmap.stations
        if not (s.load_types & carried)
    ]


def _lane_line(fmap: FacilityMap, start: str, end: str) -> LineString | None:
    nodes = fmap.node_by_id
    if start not in nodes or end not in nodes:
        return None
    a, b = nodes[start], nodes[end]
    return LineString([(a.x, a.y), (b.x, b.y)])


def _clearance(fmap: FacilityMap) -> list[str]:
    if not fmap.vehicle_types:
        return []
    clearance = 2 * max(v.radius for v in fmap.vehicle_types)
    elements: list[tuple[str, frozenset[str]]] = []
    geoms = []
    for node in fmap.nodes:
        elements.append((f"node {node.id}", frozenset({node.id})))
        geoms.append(Point(node.x, node.y))
    for lane in fmap.lanes:
        line = _lane_line(fmap, lane.start, lane.end)
        assert line is not None  # references were checked before
        elements.append((f"lane {lane.id}", frozenset({lane.start, lane.end})))
        geoms.append(line)
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="dwithin", distance=clearance - _TOLERANCE)
    problems = []
    reported: set[tuple[str, str]] = set()
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        (name_i, nodes_i), (name_j, nodes_j) = elements[i], elements[j]
        if nodes_i & nodes_j:
            continue  # a lane and its own end node, or two lanes meeting at a node
        key = (name_i, name_j)
        if key in reported:
            continue
        reported.add(key)
        gap = geoms[i].distance(geoms[j])
        problems.append(f"{name_i} and {name_j} are {gap:.2f} m apart, closer than the {clearance:.2f} m clearance")
    return problems


def _reachability(fmap: FacilityMap) -> list[str]:
    places = [(f"station {s.id}", s.node) for s in fmap.stations]
    places += [(f"charger {c.id}", c.node) for c in fmap.chargers]
    places += [(f"parking {p.id}", p.node) for p in fmap.parking]
    if len(places) < 2:
        return []
    forward: dict[str, list[str]] = defaultdict(list)
    backward: dict[str, list[str]] = defaultdict(list)
    for lane in fmap.lanes:
        forward[lane.start].append(lane.end)
        backward[lane.end].append(lane.start)
        if lane.two_way:
            forward[lane.end].append(lane.start)
            backward[lane.start].append(lane.end)
    anchor_name, anchor = places[0]
    reach_from = _reached(anchor, forward)
    reach_to = _reached(anchor, backward)
    problems = []
    for name, node in places[1:]:
        if node not in reach_from:
            problems.append(f"{name} (node {node}) cannot be reached from {anchor_name}")
        if node not in reach_to:
            problems.append(f"{anchor_name} cannot be reached from {name} (node {node})")
    return problems


def _reached(start: str, adjacency: dict[str, list[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in adjacency[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
