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


def _time_to_reach(v: SimVehicle, node: str, dt: float = 0.1) -> tuple[float, list[tuple[float, float, float, float]]]:
    """Seconds until the vehicle reports `node`, and its (x, y, heading, speed) after each step."""
    trace = []
    for k in range(1, 2000):
        events = v.step(dt)
        trace.append((v.x, v.y, v.heading, v.speed))
        if NodeReached("V", node) in events:
            return k * dt, trace
    raise AssertionError(f"never reached {node}")


def test_a_vehicle_that_turns_on_the_spot_stops_and_turns_at_a_corner(small_map: FacilityMap) -> None:
    """A2 -> A3 -> M1 bends 90 degrees at A3. A cart turning on the spot at 45 deg/s stands at A3
    for 2 s, its heading sweeping from east to north, and arrives later than one that turns
    while it drives by at least those 2 s; on the straight lane before, both drive alike."""
    from dataclasses import replace

    vtype = small_map.vehicle_types[0]
    assert vtype.turn_rate_deg_s is None
    plain = cart(small_map, "A2")
    spinner = SimVehicle(
        "V",
        replace(vtype, turn_rate_deg_s=45.0),
        small_map,
        lane_geometry_for(small_map, vtype.max_speed),
        "A2",
        1.0,
    )
    for v in (plain, spinner):
        v.drive(("A3", "M1"))
    plain_s, _ = _time_to_reach(plain, "M1")
    spinner_s, trace = _time_to_reach(spinner, "M1")
    assert spinner_s >= plain_s + 2.0 - 0.2
    at_corner = [(h, s) for x, y, h, s in trace if (x, y) == (12.0, 0.0)]
    assert all(s == 0.0 for _, s in at_corner[1:]), "it does not drive while it turns"
    headings = [round(h, 3) for h, _ in at_corner]
    assert len(set(headings)) > 5, "the heading sweeps while it stands"
    assert len(at_corner) * 0.1 == pytest.approx(2.0, abs=0.3)


def _drive_until(v: SimVehicle, progress: float) -> None:
    for _ in range(1000):
        v.step(0.05)
        if v.progress >= progress:
            return
    raise AssertionError("never got that far")


def test_halted_on_a_lane_it_stands_there_and_drives_on_along_it(small_map: FacilityMap) -> None:
    """`halt` stops it where it is, on the lane; driving on to the lane's end continues from there."""
    v = cart(small_map, "A1")
    v.drive(("A2", "A3"))
    _drive_until(v, 2.0)
    x = v.x
    v.halt()
    assert v.step(1.0) == [] and v.x == x and v.on_lane and not v.moving
    assert v.standing_on is None, "2 m from either node"
    v.drive(("A2",))
    events = []
    for _ in range(200):
        events += v.step(0.1)
    assert events == [NodeReached("V", "A2")] and (v.x, v.y) == (6.0, 0.0)
    assert v.odometer == pytest.approx(6.0)


def test_halted_near_its_last_node_it_goes_back_to_it_for_another_way(small_map: FacilityMap) -> None:
    """Halted within a node's reach, it stands on that node: a path that leaves the node another
    way first takes it back the few centimetres to the node, slowly."""
    v = cart(small_map, "A2")
    v.drive(("A3",))
    _drive_until(v, 0.3)
    v.halt()
    assert v.standing_on == "A2"
    v.drive(("SD", "A3"))
    events = []
    for _ in range(400):
        events += v.step(0.1)
    assert events == [NodeReached("V", "A2"), NodeReached("V", "SD"), NodeReached("V", "A3")]
    assert (v.x, v.y) == (12.0, 0.0)
