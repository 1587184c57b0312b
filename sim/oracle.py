"""The collision oracle: checked every simulation step, independent of the controller's logic.

Two checks:
- physical: no two vehicle footprints (rectangles at their heading) overlap; candidate pairs come
  from a k-d tree and a circle test, exact overlap from shapely;
- claims: a vehicle driving from node A to node B holds lane A-B and node B in the controller's
  traffic manager (read through its public `holder`), so no two vehicles ever drive into the same
  node or lane; one halted on a lane holds the same, or the node it stands within reach of.
An overlap episode between the same pair counts once, however many steps it lasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

from fleet.traffic import TrafficManager, lane_resource, node_resource
from sim.vehicle import SimVehicle


@dataclass(frozen=True, slots=True)
class Collision:
    at: float
    a: str
    b: str
    x: float
    y: float


@dataclass
class CollisionOracle:
    collisions: list[Collision] = field(default_factory=list)
    claim_violations: list[str] = field(default_factory=list)
    _touching: set[tuple[str, str]] = field(default_factory=set)

    def check(self, now: float, vehicles: Sequence[SimVehicle], traffic: TrafficManager | None) -> None:
        """Footprints always; claims when the traffic manager is at hand (not in a vehicles-only process)."""
        self._check_footprints(now, vehicles)
        if traffic is not None:
            self._check_claims(now, vehicles, traffic)

    def _check_footprints(self, now: float, vehicles: Sequence[SimVehicle]) -> None:
        touching: set[tuple[str, str]] = set()
        if len(vehicles) < 2:
            self._touching = touching
            return
        # A k-d tree finds the pairs within the largest reach (a third of the time of all pairwise
        # distances at 50 vehicles); each pair is then held to its own two radii.
        xy = np.array([(v.x, v.y) for v in vehicles])
        reach = 2 * max(v.radius for v in vehicles)
        for i, j in sorted(cKDTree(xy).query_pairs(reach, output_type="ndarray").tolist()):
            a, b = vehicles[i], vehicles[j]
            if math.dist((a.x, a.y), (b.x, b.y)) >= a.radius + b.radius:
                continue
            if footprint(a).intersects(footprint(b)):
                pair = (a.id, b.id)
                touching.add(pair)
                if pair not in self._touching:
                    self.collisions.append(Collision(now, a.id, b.id, (a.x + b.x) / 2, (a.y + b.y) / 2))
        self._touching = touching

    def _check_claims(self, now: float, vehicles: Sequence[SimVehicle], traffic: TrafficManager) -> None:
        for v in vehicles:
            if v.segment is None:
                continue
            a, b = v.segment
            near = v.standing_on  # halted on a lane within a node's reach: it stands on that node
            needed = (node_resource(near),) if near is not None else (lane_resource(a, b), node_resource(b))
            for resource in needed:
                holder = traffic.holder(resource)
                if holder != v.id:
                    self.claim_violations.append(
                        f"t={now:.1f}s {v.id} drives {a}->{b} but {resource} is held by {holder}"
                    )


def footprint(v: SimVehicle) -> Polygon:
    """The vehicle's rectangle at its pose."""
    c, s = math.cos(v.heading), math.sin(v.heading)
    hl, hw = v.type.length / 2, v.type.width / 2
    corners = [(hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)]
    return Polygon([(v.x + c * px - s * py, v.y + s * px + c * py) for px, py in corners])
