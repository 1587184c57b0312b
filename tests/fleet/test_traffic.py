"""First traffic manager: claims ahead, frees behind, corridors claimed whole, waits explained."""

from __future__ import annotations

from fleet.traffic import TrafficManager, lane_resource, node_resource
from maps import FacilityMap


def test_two_vehicles_never_hold_the_same_node(small_map: FacilityMap) -> None:
    """The follower is released only up to the node behind the leader and says why it waits."""
    tm = TrafficManager(small_map, lookahead=3)
    tm.place("lead", "A2")
    tm.place("follow", "A1")
    tm.set_route("follow", ["A1", "A2", "A3"])
    assert tm.release("follow") == []
    assert tm.waiting["follow"].describe() == "waits for lead to free node A2"
    tm.set_route("lead", ["A2", "A3", "A4"])
    assert tm.release("lead") == ["A3", "A4"]
    tm.reached("lead", "A3")
    assert tm.holder(node_resource("A2")) is None
    assert tm.release("follow") == ["A2"]
    assert tm.waiting["follow"].resource == node_resource("A3")


def test_corridor_is_claimed_in_one_go(small_map: FacilityMap) -> None:
    """A3-M1-A6 is two-way: a vehicle entering claims both lanes and the exit node at once,
    and a vehicle from the other end waits at A6's side, not inside."""
    tm = TrafficManager(small_map, lookahead=1)
    tm.place("north", "A2")
    tm.set_route("north", ["A2", "A3", "M1", "A6"])
    assert tm.release("north") == ["A3", "M1", "A6"]
    for r in (lane_resource("A3", "M1"), lane_resource("M1", "A6"), node_resource("A6")):
        assert tm.holder(r) == "north"
    tm.place("south", "A5")
    tm.set_route("south", ["A5", "A6", "M1", "A3"])
    assert tm.release("south") == []
    assert tm.waiting["south"].holder == "north"


def test_single_vehicle_zone_is_exclusive(small_map: FacilityMap) -> None:
    """The fire door zone around A5 admits one vehicle even on different lanes."""
    tm = TrafficManager(small_map, lookahead=1)
    tm.place("a", "CH")
    tm.set_route("a", ["CH", "A5"])
    assert tm.release("a") == ["A5"]
    tm.place("b", "A4")
    tm.set_route("b", ["A4", "A5"])
    assert tm.release("b") == []
    assert "single-vehicle zone FIRE-DOOR" in tm.waiting["b"].describe()


def test_wait_cycle_is_detected(small_map: FacilityMap) -> None:
    """x at A3 wants A4 (y), y at A4 wants A5 (z), z at A5 wants the corridor to A3 (x): one cycle."""
    tm = TrafficManager(small_map, lookahead=1)
    for vid, node in (("x", "A3"), ("y", "A4"), ("z", "A5")):
        tm.place(vid, node)
    tm.set_route("x", ["A3", "A4"])
    tm.set_route("y", ["A4", "A5"])
    assert tm.release("x") == [] and tm.release("y") == []
    assert tm.wait_cycles() == [], "a chain of waits is not yet a cycle"
    tm.set_route("z", ["A5", "A6", "M1", "A3"])
    assert tm.release("z") == []
    assert tm.waiting["z"].holder == "x"
    assert [sorted(c) for c in tm.wait_cycles()] == [["x", "y", "z"]]


def test_a_driving_vehicle_is_not_part_of_a_deadlock(small_map: FacilityMap) -> None:
    """x waits on y, y on z, z on x, but z still drives its released bay lane towards PA3 and will
    free A5 and the fire door behind it: a transient wait, not a deadlock."""
    tm = TrafficManager(small_map, lookahead=2)
    for vid, node in (("x", "A3"), ("y", "A4"), ("z", "A5")):
        tm.place(vid, node)
    tm.set_route("z", ["A5", "PA3", "A6", "M1", "A3"])
    assert tm.release("z") == ["PA3"]  # the corridor to A3 is x's
    tm.set_route("x", ["A3", "A4"])
    tm.set_route("y", ["A4", "A5"])
    tm.release("x")
    tm.release("y")
    assert (tm.waiting["x"].holder, tm.waiting["y"].holder, tm.waiting["z"].holder) == ("y", "z", "x")
    assert tm.wait_cycles() == []
    tm.reached("z", "PA3")
    assert tm.release("y") == ["A5"], "z left the fire door zone and freed A5"
