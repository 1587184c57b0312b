"""Traffic manager: claims ahead, frees behind, corridors claimed whole, turns taken in the
planned order, waits explained."""

from __future__ import annotations

import pytest

from fleet.traffic import TrafficManager, lane_resource, node_resource
from maps import FacilityMap
from planners.sipp import INF, Visit


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


def test_a_planned_vehicle_takes_its_turn(small_map: FacilityMap) -> None:
    """Two carts with planned routes through A3: the one planned first there goes first even
    when the other is nearer, and the other says whom it waits for; nothing is claimed early."""
    tm = TrafficManager(small_map, lookahead=3)
    tm.place("near", "A2")
    tm.place("far", "A1")
    tm.set_route("far", ["A1", "SA", "A2", "A3", "A4"], [0.0, 5.0, 10.0, 15.0])  # planned to pass A2 first
    tm.set_route("near", ["A2", "A3", "A4"], [20.0, 25.0])  # planned to leave A2 only after
    assert tm.release("near") == []
    assert tm.waiting["near"].turn and tm.waiting["near"].cause == "turn"
    assert tm.waiting["near"].describe() == "waits for far to pass node A3 first, as planned"
    assert tm.holder(node_resource("A3")) is None
    assert tm.release("far") == ["SA"]  # A2 is held by `near`
    assert tm.waiting["far"].resource == node_resource("A2") and not tm.waiting["far"].turn
    # `far` cannot come by: it gives up its turns, and `near` goes.
    tm.drop_turns("far")
    assert tm.turns_dropped == {"far"}
    assert tm.release("near") == ["A3", "A4"]


def test_turns_are_retimed_but_keep_their_order(small_map: FacilityMap) -> None:
    """New times from a projection replace the planned ones; a vehicle planned later is slotted
    in by the new times."""
    tm = TrafficManager(small_map, lookahead=3)
    tm.place("a", "A1")
    tm.place("b", "A8")
    tm.set_route("a", ["A1", "A2", "A3"], [0.0, 4.0])
    tm.set_route("b", ["A8", "A1", "A2"], [8.0, 12.0])
    assert tm.turn_order()["A2"] == ["a", "b"]
    late = [Visit("A1", 0, 30), Visit("A2", 34, 34), Visit("A3", 38, INF)]
    tm.retime_turns({"a": late, "b": [Visit("A8", 0, 40), Visit("A1", 44, 44), Visit("A2", 48, INF)]})
    assert tm.next_turn("a") == ("A2", 30.0)
    assert tm.turn_order()["A2"] == ["a", "b"]
    tm.place("c", "SA")
    tm.set_route("c", ["SA", "A2"], [20.0])  # before `a` is now expected at A2
    assert tm.turn_order()["A2"] == ["c", "a", "b"]


def test_a_vehicle_placed_mid_base_holds_what_lies_ahead(small_map: FacilityMap) -> None:
    """Placed with nodes an earlier run released to it, a vehicle holds them and the lanes to them
    until it passes them; nobody else may be placed there; its next route starts at their end."""
    tm = TrafficManager(small_map)
    tm.place("AGV-1", "A1", ["A2", "A3"])
    assert {node_resource("A2"), node_resource("A3"), lane_resource("A2", "A3")} <= tm.held_by("AGV-1")
    assert tm.released_end("AGV-1") == "A3"
    with pytest.raises(ValueError, match="held by AGV-1"):
        tm.place("AGV-2", "A3")
    tm.reached("AGV-1", "A2")
    assert node_resource("A1") not in tm.held_by("AGV-1")
    tm.set_route("AGV-1", ["A3", "A4"])
    assert tm.route_nodes("AGV-1")[:3] == ["A2", "A3", "A4"]
