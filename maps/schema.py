"""The native map file format (YAML or JSON) as pydantic models, and its conversions.

`map_from_wire` and `map_to_wire` are the only way between file data and `FacilityMap`;
they round-trip. Semantic checks (references, geometry, reachability) live in
`maps.validate`; this module checks only shape and value ranges.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import Polygon

from maps.model import (
    Charger,
    FacilityMap,
    Lane,
    Node,
    ParkingSpot,
    Station,
    StationKind,
    VehicleType,
    Zone,
    ZoneKind,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)  # every number finite


class NodeIn(_Strict):
    id: str = Field(min_length=1)
    x: float
    y: float
    theta: float | None = Field(default=None, ge=-math.pi, le=math.pi, description="rad; the heading required here")
    allowed_deviation_xy: float | None = Field(default=None, ge=0, le=10, description="m a vehicle may stand off")
    allowed_deviation_theta: float | None = Field(default=None, ge=0, le=math.pi, description="rad off theta")


class LaneIn(_Strict):
    id: str | None = None
    start: str = Field(alias="from", min_length=1)
    end: str = Field(alias="to", min_length=1)
    max_speed: float = Field(gt=0)
    two_way: bool = False
    length: float | None = Field(default=None, ge=0, description="defaults to the straight-line distance")


class StationIn(_Strict):
    id: str = Field(min_length=1)
    node: str
    kind: StationKind
    load_types: list[str] = Field(min_length=1)
    service_time_s: float = Field(default=20.0, ge=0)


class ChargerIn(_Strict):
    id: str = Field(min_length=1)
    node: str
    power_w: float = Field(default=1500.0, gt=0)


class ParkingIn(_Strict):
    id: str = Field(min_length=1)
    node: str


class ZoneIn(_Strict):
    id: str = Field(min_length=1)
    kind: ZoneKind
    polygon: list[tuple[float, float]] = Field(min_length=3)
    speed_limit: float | None = Field(default=None, gt=0)


class VehicleTypeIn(_Strict):
    id: str = Field(min_length=1)
    length: float = Field(gt=0)
    width: float = Field(gt=0)
    max_speed: float = Field(gt=0)
    acceleration: float = Field(gt=0)
    battery_capacity_wh: float = Field(gt=0)
    consumption_wh_per_m: float = Field(default=0.5, ge=0)
    load_capacity: int = Field(default=1, ge=1)
    load_types: list[str] = Field(min_length=1)
    idle_power_w: float = Field(default=0.0, ge=0)
    load_consumption_wh_per_m: float = Field(default=0.0, ge=0)
    turn_rate_deg_s: float | None = Field(default=None, gt=0)


class MapFile(_Strict):
    """A facility map file, format version 1."""

    name: str = Field(min_length=1)
    vehicle_types: list[VehicleTypeIn] = Field(min_length=1)
    nodes: list[NodeIn] = Field(min_length=1)
    lanes: list[LaneIn] = Field(default_factory=list)
    stations: list[StationIn] = Field(default_factory=list)
    chargers: list[ChargerIn] = Field(default_factory=list)
    parking: list[ParkingIn] = Field(default_factory=list)
    zones: list[ZoneIn] = Field(default_factory=list)


def lane_id(lane: LaneIn) -> str:
    return lane.id if lane.id is not None else f"{lane.start}-{lane.end}"


def map_from_wire(data: MapFile) -> FacilityMap:
    """Build the map values from parsed file data, without semantic checks.

    Lanes whose nodes are unknown get length 0 here; `maps.validate` reports them.
    """
    coords = {n.id: (n.x, n.y) for n in data.nodes}
    lanes = []
    for lane in data.lanes:
        a, b = coords.get(lane.start), coords.get(lane.end)
        straight = math.dist(a, b) if a is not None and b is not None else 0.0
        lanes.append(
            Lane(
                id=lane_id(lane),
                start=lane.start,
                end=lane.end,
                length=lane.length if lane.length is not None else straight,
                max_speed=lane.max_speed,
                two_way=lane.two_way,
            )
        )
    return FacilityMap(
        name=data.name,
        nodes=tuple(
            Node(n.id, n.x, n.y, n.theta, n.allowed_deviation_xy, n.allowed_deviation_theta) for n in data.nodes
        ),
        lanes=tuple(lanes),
        stations=tuple(Station(s.id, s.node, s.kind, frozenset(s.load_types), s.service_time_s) for s in data.stations),
        chargers=tuple(Charger(c.id, c.node, c.power_w) for c in data.chargers),
        parking=tuple(ParkingSpot(p.id, p.node) for p in data.parking),
        zones=tuple(Zone(z.id, z.kind, Polygon(z.polygon), z.speed_limit) for z in data.zones),
        vehicle_types=tuple(
            VehicleType(
                id=v.id,
                length=v.length,
                width=v.width,
                max_speed=v.max_speed,
                acceleration=v.acceleration,
                battery_capacity_wh=v.battery_capacity_wh,
                consumption_wh_per_m=v.consumption_wh_per_m,
                load_capacity=v.load_capacity,
                load_types=frozenset(v.load_types),
                idle_power_w=v.idle_power_w,
                load_consumption_wh_per_m=v.load_consumption_wh_per_m,
                turn_rate_deg_s=v.turn_rate_deg_s,
            )
            for v in data.vehicle_types
        ),
    )


def _node_to_wire(n: Node) -> dict[str, Any]:
    optional = {"theta": n.theta, "allowed_deviation_xy": n.deviation_xy, "allowed_deviation_theta": n.deviation_theta}
    return {"id": n.id, "x": n.x, "y": n.y, **{k: v for k, v in optional.items() if v is not None}}


def map_to_wire(fmap: FacilityMap) -> dict[str, Any]:
    """The file representation of a map (JSON-ready); `map_from_wire` of it gives the same map."""
    return {
        "name": fmap.name,
        "vehicle_types": [
            {
                "id": v.id,
                "length": v.length,
                "width": v.width,
                "max_speed": v.max_speed,
                "acceleration": v.acceleration,
                "battery_capacity_wh": v.battery_capacity_wh,
                "consumption_wh_per_m": v.consumption_wh_per_m,
                "load_capacity": v.load_capacity,
                "load_types": sorted(v.load_types),
                "idle_power_w": v.idle_power_w,
                "load_consumption_wh_per_m": v.load_consumption_wh_per_m,
                **({"turn_rate_deg_s": v.turn_rate_deg_s} if v.turn_rate_deg_s is not None else {}),
            }
            for v in fmap.vehicle_types
        ],
        "nodes": [_node_to_wire(n) for n in fmap.nodes],
        "lanes": [
            {
                "id": lane.id,
                "from": lane.start,
                "to": lane.end,
                "max_speed": lane.max_speed,
                "two_way": lane.two_way,
                "length": lane.length,
            }
            for lane in fmap.lanes
        ],
        "stations": [
            {
                "id": s.id,
                "node": s.node,
                "kind": s.kind.value,
                "load_types": sorted(s.load_types),
                "service_time_s": s.service_time_s,
            }
            for s in fmap.stations
        ],
        "chargers": [{"id": c.id, "node": c.node, "power_w": c.power_w} for c in fmap.chargers],
        "parking": [{"id": p.id, "node": p.node} for p in fmap.parking],
        "zones": [
            {
                "id": z.id,
                "kind": z.kind.value,
                "polygon": [list(pt) for pt in z.polygon.exterior.coords[:-1]],
                "speed_limit": z.speed_limit,
            }
            for z in fmap.zones
        ],
    }
