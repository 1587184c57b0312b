"""The facility map as immutable values: what the planners and the controller read.

Coordinates are metres in the plant frame, speeds metres per second, times seconds.
A map is built only through `maps.load.parse_map`, which validates it first, so code that
holds a `FacilityMap` may assume every reference in it resolves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from shapely.geometry import LineString, Polygon


class StationKind(StrEnum):
    """What a vehicle may do at a station."""

    PICKUP = "pickup"
    DROPOFF = "dropoff"
    BOTH = "both"

    @property
    def can_pick(self) -> bool:
        return self in (StationKind.PICKUP, StationKind.BOTH)

    @property
    def can_drop(self) -> bool:
        return self in (StationKind.DROPOFF, StationKind.BOTH)


class ZoneKind(StrEnum):
    """How a zone restricts traffic."""

    KEEP_OUT = "keep_out"
    SPEED_LIMIT = "speed_limit"
    SINGLE_VEHICLE = "single_vehicle"


@dataclass(frozen=True, slots=True)
class Node:
    """A point vehicles can stop at or pass through; where the plant needs it, the heading a
    vehicle must have there and how far it may stand off (VDA 5050 nodePosition)."""

    id: str
    x: float
    y: float
    theta: float | None = None  # rad, the heading a vehicle must have on the node (None: any)
    deviation_xy: float | None = None  # m a vehicle may stand off the node and be on it (None: the default)
    deviation_theta: float | None = None  # rad its heading may differ from theta


@dataclass(frozen=True, slots=True)
class Lane:
    """A drivable connection between two nodes; two-way lanes carry traffic both ways, one at a time."""

    id: str
    start: str
    end: str
    length: float
    max_speed: float
    two_way: bool = False


@dataclass(frozen=True, slots=True)
class Station:
    """A place on a node where loads are picked up or dropped off."""

    id: str
    node: str
    kind: StationKind
    load_types: frozenset[str]
    service_time_s: float


@dataclass(frozen=True, slots=True)
class Charger:
    """A charging spot on a node; one vehicle at a time."""

    id: str
    node: str
    power_w: float


@dataclass(frozen=True, slots=True)
class ParkingSpot:
    """A node where an idle vehicle can wait without blocking an aisle."""

    id: str
    node: str


@dataclass(frozen=True)
class Zone:
    """An area with a traffic rule. `speed_limit` is set only for speed-limit zones."""

    id: str
    kind: ZoneKind
    polygon: Polygon
    speed_limit: float | None = None


@dataclass(frozen=True, slots=True)
class VehicleType:
    """Physical and energy properties shared by vehicles of one model."""

    id: str
    length: float
    width: float
    max_speed: float
    acceleration: float
    battery_capacity_wh: float
    consumption_wh_per_m: float
    load_capacity: int
    load_types: frozenset[str]
    # Drawn whenever the vehicle is on and not charging (computers, sensors; also while it waits).
    idle_power_w: float = 0.0
    # Drawn on top of consumption_wh_per_m per metre driven per load carried.
    load_consumption_wh_per_m: float = 0.0
    # None: the vehicle changes direction while it drives (curves, omnidirectional). A rate: it
    # stops at each node where its direction changes and turns on the spot (differential drive).
    turn_rate_deg_s: float | None = None

    @property
    def radius(self) -> float:
        """Radius of the circle around the footprint: the clearance the vehicle needs turning on the spot."""
        return math.hypot(self.length, self.width) / 2


@dataclass(frozen=True)
class FacilityMap:
    """A validated facility: the single source of geometry and rules for one site."""

    name: str
    nodes: tuple[Node, ...]
    lanes: tuple[Lane, ...]
    stations: tuple[Station, ...]
    chargers: tuple[Charger, ...] = ()
    parking: tuple[ParkingSpot, ...] = ()
    zones: tuple[Zone, ...] = ()
    vehicle_types: tuple[VehicleType, ...] = field(default_factory=tuple)

    @cached_property
    def node_by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def station_by_id(self) -> dict[str, Station]:
        return {s.id: s for s in self.stations}

    @cached_property
    def vehicle_type_by_id(self) -> dict[str, VehicleType]:
        return {v.id: v for v in self.vehicle_types}

    @cached_property
    def lane_by_id(self) -> dict[str, Lane]:
        return {lane.id: lane for lane in self.lanes}

    @cached_property
    def lane_lines(self) -> dict[str, LineString]:
        """Centre line per lane id (a lane with an unknown node has none; `maps.validate` says so)."""
        nodes = self.node_by_id
        return {
            lane.id: LineString([(nodes[lane.start].x, nodes[lane.start].y), (nodes[lane.end].x, nodes[lane.end].y)])
            for lane in self.lanes
            if lane.start in nodes and lane.end in nodes
        }

    @cached_property
    def no_through_nodes(self) -> frozenset[str]:
        """Parking spots and chargers: places to stop at, never to drive through."""
        return frozenset(p.node for p in self.parking) | frozenset(c.node for c in self.chargers)

    def lanes_crossing(self, zone: Zone) -> frozenset[str]:
        """Ids of the lanes whose centre line crosses or touches the zone."""
        return frozenset(lid for lid, line in self.lane_lines.items() if zone.polygon.intersects(line))

    @cached_property
    def lane_between(self) -> dict[tuple[str, str], Lane]:
        """The lane to drive from one node to another (both directions of a two-way lane)."""
        out: dict[tuple[str, str], Lane] = {}
        for lane in self.lanes:
            out.setdefault((lane.start, lane.end), lane)
            if lane.two_way:
                out.setdefault((lane.end, lane.start), lane)
        return out

    def zones_of_kind(self, kind: ZoneKind) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.kind is kind)
