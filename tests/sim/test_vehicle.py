"""Simulated vehicle kinematics: acceleration limits, stopping at the end of what is released, battery."""

from __future__ import annotations

import pytest

from fleet.events import ActionFinished, ActionKind, NodeReached
from maps import FacilityMap
from sim.vehicle import SimVehicle, lane_geometry_for


def cart(small_map: FacilityMap, node: str) -> SimVehicle:
    vtype = small_map.vehicle_types[0]
    return SimVehicle("V", vtype, small_map, lane_geometry_for(small_map, vtype.max_speed), node, 1.0)


def test_accelerates_no_faster_than_its_type_allows(small_map: FacilityMap) -> None:
    v = cart(small_map, "A2")
    v.drive(("A3", "A4"))
    v.step(1.0)
    assert v.speed == pytest.approx(0.5)  # 0.5 m/s^2 for 1 s


def test_reaches_each_node_once_and_stops_at_the_end(small_map: FacilityMap) -> None:
    v = cart(small_map, "A2")
    v.drive(("A3", "A4"))
    events = []
    for _ in range(100):
        events += v.step(0.5)
    assert events == [NodeReached("V", "A3"), NodeReached("V", "A4")]
    assert (v.x, v.y, v.speed) == (18.0, 0.0, 0.0)
    assert v.odometer == pytest.approx(12.0)
    assert v.battery == pytest.approx(1.0 - 12.0 * 0.4 / 2400)


def test_load_action_takes_the_station_service_time(small_map: FacilityMap) -> None:
    v = cart(small_map, "SA")
    v.start_action(ActionKind.PICK, "ST-A", None)
    events = []
    for _ in range(29):
        events += v.step(0.5)
    assert events == []  # 14.5 s of 15 s
    assert v.step(0.5) == [ActionFinished("V", ActionKind.PICK)]
