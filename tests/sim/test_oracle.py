"""The collision oracle itself: it must see what it is there to see."""

from __future__ import annotations

from fleet.clock import SimClock
from fleet.core import Controller
from maps import FacilityMap
from sim.oracle import CollisionOracle
from sim.vehicle import SimVehicle, lane_geometry_for


def carts(small_map: FacilityMap, *nodes: str) -> list[SimVehicle]:
    vtype = small_map.vehicle_types[0]
    geo = lane_geometry_for(small_map, vtype.max_speed)
    return [SimVehicle(f"V{i}", vtype, small_map, geo, n, 1.0) for i, n in enumerate(nodes)]


def test_overlapping_footprints_are_a_collision(small_map: FacilityMap) -> None:
    a, b = carts(small_map, "A1", "A2")
    b.x, b.y = a.x + 1.0, a.y  # 1.0 m apart, carts are 1.2 m long: they overlap
    oracle = CollisionOracle()
    controller = Controller(small_map, SimClock())
    oracle.check(0.0, [a, b], controller.traffic)
    assert [(c.a, c.b) for c in oracle.collisions] == [("V0", "V1")]
    oracle.check(0.5, [a, b], controller.traffic)
    assert len(oracle.collisions) == 1, "one episode counts once"


def test_side_by_side_without_touching_is_fine(small_map: FacilityMap) -> None:
    a, b = carts(small_map, "A1", "A2")
    b.x, b.y = a.x, a.y + 0.85  # widths 0.8: a 5 cm gap
    oracle = CollisionOracle()
    oracle.check(0.0, [a, b], Controller(small_map, SimClock()).traffic)
    assert oracle.collisions == []


def test_driving_without_a_claim_is_reported(small_map: FacilityMap) -> None:
    (a,) = carts(small_map, "A1")
    a.drive(("A2",))
    a.step(0.5)
    oracle = CollisionOracle()
    oracle.check(0.5, [a], Controller(small_map, SimClock()).traffic)
    assert oracle.claim_violations and "V0 drives A1->A2" in oracle.claim_violations[0]
