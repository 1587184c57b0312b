"""Controller core: order intake, a transport driven by events, alarms."""

from __future__ import annotations

import pytest

from fleet.clock import SimClock
from fleet.core import Controller, OrderRejected
from fleet.events import ActionFinished, ActionKind, Alarm, DriveNodes, NodeReached, OrderChanged, StartAction, Tick
from fleet.model import DELIVERY_PATH, OrderState, TaskKind
from maps import FacilityMap
from maps.schema import MapFile, map_from_wire


@pytest.fixture
def controller(small_map: FacilityMap) -> Controller:
    return Controller(small_map, SimClock())


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"pickup": "NOPE", "dropoff": "ST-B"}, "pickup", "unknown station 'NOPE'"),
        ({"pickup": "ST-A", "dropoff": "NOPE"}, "dropoff", "unknown station 'NOPE'"),
        ({"pickup": "ST-B", "dropoff": "ST-C"}, "pickup", "dropoff station"),
        ({"pickup": "ST-A", "dropoff": "ST-SD"}, "dropoff", "pickup station"),
        ({"pickup": "ST-A", "dropoff": "ST-D1"}, "dropoff", "share no load type"),
        ({"pickup": "ST-A", "dropoff": "ST-B", "load_type": "bin"}, "load_type", "'bin' is not handled"),
        ({"pickup": "ST-A", "dropoff": "ST-B", "priority": 11}, "priority", "between 0 and 10"),
    ],
)
def test_bad_orders_are_rejected_naming_the_field(
    controller: Controller, kwargs: dict[str, object], field: str, text: str
) -> None:
    with pytest.raises(OrderRejected) as info:
        controller.submit_order(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert text in info.value.message
    assert controller.orders == {}, "a rejected order leaves nothing behind"


def test_one_transport_end_to_end_by_events(controller: Controller) -> None:
    """Drive a vehicle through the commands the core emits, reporting each node like a vehicle would."""
    controller.add_vehicle("AGV-01", "cart", "PA1")
    order = controller.submit_order("ST-A", "ST-B")
    assert order.state is OrderState.ACCEPTED and order.load_type == "rack"
    commands = controller.handle(Tick())
    position = "PA1"
    for _ in range(200):  # bounded: the transport needs far fewer events
        drives = [c for c in commands if isinstance(c, DriveNodes)]
        actions = [c for c in commands if isinstance(c, StartAction)]
        commands = []
        for drive in drives:
            for node in drive.nodes:
                commands += controller.handle(NodeReached("AGV-01", node))
                position = node
        for action in actions:
            assert action.action in (ActionKind.PICK, ActionKind.DROP)
            commands += controller.handle(ActionFinished("AGV-01", action.action))
        if controller.orders[order.id].state is OrderState.FINISHED:
            break
        commands += controller.handle(Tick())
    final = controller.orders[order.id]
    assert final.state is OrderState.FINISHED
    assert tuple(h.state for h in final.history) == DELIVERY_PATH
    assert position == "SB", "the vehicle reported its way to the drop-off station"


def test_changes_are_published(controller: Controller) -> None:
    controller.add_vehicle("AGV-01", "cart", "PA1")
    controller.submit_order("ST-A", "ST-B")
    published = [c for c in controller.take_commands() if isinstance(c, OrderChanged)]
    assert [c.order.state for c in published] == [OrderState.ACCEPTED]


def test_cancel_withdraws_an_order_not_yet_loaded(controller: Controller) -> None:
    controller.add_vehicle("AGV-01", "cart", "PA1")
    order = controller.submit_order("ST-A", "ST-B")
    controller.handle(Tick())
    cancelled = controller.cancel_order(order.id)
    assert cancelled.state is OrderState.CANCELLED
    assert controller.vehicles["AGV-01"].task is None or controller.vehicles["AGV-01"].task.order_id != order.id


def test_vehicle_on_a_parking_spot_starts_parked(controller: Controller) -> None:
    """No start-up shuffle: a vehicle registered on a parking spot is already parked there."""
    controller.add_vehicle("AGV-01", "cart", "PA1")
    commands = controller.handle(Tick())
    assert not [c for c in commands if isinstance(c, DriveNodes)]


def test_cancel_while_driving_stops_at_the_next_node_and_frees_the_rest(controller: Controller) -> None:
    """Cancelling an order its vehicle drives to: nothing more is released, the vehicle is told to
    stop, gets no work until it reports where it stopped, and then holds only that node."""
    from fleet.events import CancelDrive, DriveCancelled

    controller.add_vehicle("AGV-01", "cart", "PA1")
    order = controller.submit_order("ST-A", "ST-B")
    drives = [c for c in controller.handle(Tick()) if isinstance(c, DriveNodes)]
    assert drives, "the vehicle was sent off"
    first = drives[0].nodes[0]
    controller.handle(NodeReached("AGV-01", first))
    commands = controller.take_commands()
    controller.cancel_order(order.id)
    commands = controller.take_commands()
    assert CancelDrive("AGV-01") in commands
    assert controller.vehicles["AGV-01"].stopping
    assert not [c for c in controller.handle(Tick()) if isinstance(c, DriveNodes)]
    controller.handle(DriveCancelled("AGV-01", first))
    assert not controller.vehicles["AGV-01"].stopping
    held = controller.traffic.held_by("AGV-01")
    assert held == {f"node:{first}"}, held


def test_closing_a_zone_closes_every_lane_across_it(controller: Controller) -> None:
    """FIRE-DOOR around A5 closed: a cart at A4 sent to park at P-3 (behind A5) waits at the
    closure and says why; a lane closed on its own stays closed when the zone opens; opening the
    zone lets the cart through."""
    controller.add_vehicle("AGV-01", "cart", "A4")
    controller.close_lane("A3-SB")
    controller.close_zone("FIRE-DOOR")
    assert controller.closed_zones == {"FIRE-DOOR"}
    closed = {lid for lid, lane in controller.map.lane_by_id.items() if "A5" in (lane.start, lane.end)}
    assert closed == {"A4-A5", "A5-A6", "CH-A5", "A5-PA3"}
    assert controller.graph.time("A4", "A6") == float("inf"), "nothing drives through A5"
    controller.send_to("AGV-01", TaskKind.PARK, "P-3")
    commands = controller.take_commands()
    assert any(isinstance(c, Alarm) and c.code == "blocked-by-closure" for c in commands)
    assert "closed by operator" in (controller.wait_reason("AGV-01") or "")
    assert not any(isinstance(c, DriveNodes) for c in commands)
    controller.close_zone("FIRE-DOOR", closed=False)
    drives = [c for c in controller.take_commands() if isinstance(c, DriveNodes)]
    assert drives and drives[0].vehicle_id == "AGV-01"
    assert controller.closed_lanes == {"A3-SB"}
    assert controller.graph.time("A3", "SB") == float("inf"), "the lane closed by itself stays closed"
    with pytest.raises(OrderRejected, match="unknown zone 'NOPE'"):
        controller.close_zone("NOPE")


def test_routes_keep_out_of_parking_bays(small_map_data: dict[str, object]) -> None:
    """With the aisle lane A8->A1 slowed to a crawl, the bay through parking spot P-2 (PA2) is the
    fastest way from A8 to A1; a cart sent on from A8 still takes the aisle, because a parked
    cart would block the bay."""
    lanes = small_map_data["lanes"]
    assert isinstance(lanes, list)
    for lane in lanes:
        if (lane["from"], lane["to"]) == ("A8", "A1"):
            lane["max_speed"] = 0.2
    fmap = map_from_wire(MapFile.model_validate(small_map_data))
    core = Controller(fmap, SimClock())
    assert core.graph.shortest_path("A8", "A2") == ["A8", "PA2", "A1", "A2"]
    core.add_vehicle("AGV-01", "cart", "A8")
    core.send_to("AGV-01", TaskKind.CHARGE, "CH-1")
    drives = [c for c in core.take_commands() if isinstance(c, DriveNodes)]
    assert drives and drives[0].nodes[0] == "A1"
    assert core.traffic.route_nodes("AGV-01")[:3] == ["A8", "A1", "A2"]
    # A parking spot that is the goal is of course entered.
    core.add_vehicle("AGV-02", "cart", "A7")
    core.send_to("AGV-02", TaskKind.PARK, "P-2")
    assert core.traffic.route_goal("AGV-02") == "PA2"


def test_each_assignment_says_why(controller: Controller) -> None:
    """The ASSIGNED transition carries the decision in words: vehicle, expected finish, place in
    its queue, and the margin to the due time."""
    controller.add_vehicle("AGV-01", "cart", "PA1")
    first = controller.submit_order("ST-A", "ST-B", due_at=3600.0)
    second = controller.submit_order("ST-A", "ST-C", due_at=10.0)
    controller.handle(Tick())
    reasons = {
        o.id: next(t.reason for t in o.history if t.state is OrderState.ASSIGNED) for o in controller.orders.values()
    }
    assert reasons[first.id] is not None and reasons[second.id] is not None
    assert reasons[first.id].startswith("assigned to AGV-01: done in about ")
    assert "1st in its queue" in reasons[first.id] or "1st in its queue" in reasons[second.id]
    assert "2nd in its queue" in reasons[first.id] + reasons[second.id]
    assert "min before due" in reasons[first.id]
    assert reasons[second.id].endswith("min late"), "due 10 s after submission: cannot be met"
    # The same decision as terms of the plan: the order late by its due time carries lateness,
    # its objective term is weight x (completion + 10 x lateness), the queue places are 1 and 2.
    a, b = controller.orders[first.id].decision, controller.orders[second.id].decision
    assert a is not None and b is not None and a.vehicle_id == b.vehicle_id == "AGV-01"
    assert {a.queue_position, b.queue_position} == {1, 2}
    assert a.lateness_s == 0.0 and b.lateness_s > 0
    assert abs(b.objective - b.priority_weight * (b.completion_s + 10 * b.lateness_s)) < 1  # rounded terms
    assert a.completion_s > 0 and a.priority_weight == 1 and a.moved_from is None


def test_a_lone_vehicle_is_planned_and_shows_base_and_horizon(controller: Controller) -> None:
    """The route to the pick-up comes from a plan (turns taken), the released part is the base,
    the rest the horizon, and together they lead to the station."""
    controller.add_vehicle("AGV-01", "cart", "PA1")
    controller.submit_order("ST-A", "ST-B")
    drives = [c for c in controller.handle(Tick()) if isinstance(c, DriveNodes)]
    base, horizon = controller.path_ahead("AGV-01")
    assert drives and list(drives[0].nodes) == base
    assert (base + horizon)[-1] == "SA"
    assert controller.traffic.planned("AGV-01") or not horizon, "what is not released is planned"


def test_a_closure_that_cuts_a_vehicles_leg_off_does_not_stop_dispatching(plant_map: FacilityMap) -> None:
    """Closing the clean-room zone while carts carry orders through it: those legs have no path
    on the open lanes; the dispatcher keeps running (it used to fail on an infinite time), the
    carts say they are blocked, and after reopening everything is delivered."""
    from sim.runner import SimConfig, Simulation

    sim = Simulation(plant_map, SimConfig(vehicles=12, seed=1))
    sim.run_for(120)
    sim.controller.close_zone("CLEANROOM-PECVD")
    sim.run_for(300)
    blocked = [a.vehicle_id for a in sim.controller.alarms if a.code == "blocked-by-closure"]
    assert blocked and len(blocked) == len(set(blocked)), "one alarm per blocked vehicle, not one per try"
    assert set(blocked) == sim.controller.blocked_by_closure
    sim.controller.close_zone("CLEANROOM-PECVD", False)
    cleared = {a.vehicle_id for a in sim.controller.alarms if a.code == "blocked-by-closure-cleared"}
    assert cleared == set(blocked) and not sim.controller.blocked_by_closure, "reopening ends every one"
    sim.demand_enabled = False
    sim.run_for(1800)
    report = sim.report(0.0)
    assert report.orders_open == 0 and report.collisions == 0


def test_no_path_is_released_while_vehicles_report_in(small_map: FacilityMap) -> None:
    """A (re)started controller takes and plans orders during its start-up hold but sends no
    vehicle anywhere until the hold is over; then it releases at the first tick."""
    clock = SimClock()
    controller = Controller(small_map, clock)
    controller.hold_releases(5.0)
    controller.add_vehicle("AGV-01", "cart", "PA1")
    order = controller.submit_order("ST-A", "ST-B")
    held = [c for t in range(9) if clock.advance(0.5) is None for c in controller.handle(Tick())]
    assert controller.orders[order.id].state is OrderState.TO_PICKUP, "assigned and on its way, on paper"
    assert not [c for c in held if isinstance(c, DriveNodes)]
    clock.advance(1.0)
    assert [c for c in controller.handle(Tick()) if isinstance(c, DriveNodes)], "released after the hold"


def test_ended_orders_leave_memory_after_their_window(small_map: FacilityMap) -> None:
    """An order cancelled (ended) leaves the controller's memory once `keep_ended_s` has passed
    since it ended; an open order as old stays; with no window (simulations) every order stays."""
    from dataclasses import replace

    from fleet.core import ControllerConfig

    clock = SimClock()
    controller = Controller(small_map, clock, ControllerConfig(keep_ended_s=600.0))
    ended = controller.submit_order("ST-A", "ST-B")
    still_open = controller.submit_order("ST-C", "ST-B")
    controller.cancel_order(ended.id, "not needed")
    clock.advance(599)
    controller.handle(Tick())
    assert set(controller.orders) == {ended.id, still_open.id}, "inside the window"
    clock.advance(61)
    controller.handle(Tick())
    assert set(controller.orders) == {still_open.id}, "past the window: the open one stays"

    keeping = Controller(small_map, SimClock(), replace(ControllerConfig(), keep_ended_s=None))
    order = keeping.submit_order("ST-A", "ST-B")
    keeping.cancel_order(order.id, "not needed")
    keeping.clock.advance(10**6)  # type: ignore[attr-defined]
    keeping.handle(Tick())
    assert order.id in keeping.orders
