"""One ROS robot's link: node-by-node goals as the traffic manager releases them, arrival from
the pose, the navigator's abort and timeouts as rejections, pause, cancel, actions."""

from __future__ import annotations

import math
from typing import Any

from fleet.events import (
    ActionFinished,
    ActionKind,
    DriveCancelled,
    DriveRejected,
    NodeReached,
    StartAction,
    StateReport,
)
from fleet.ros.config import RosRobotConfig, Transform2D
from fleet.ros.convert import plant_pose, quaternion, to_robot
from fleet.ros.robot import Output, Publish, RosRobotLink
from maps import FacilityMap

SHIFT = Transform2D(x=100.0, y=50.0, theta=math.pi / 2)  # the robot's map is turned and moved


def robot(fmap: FacilityMap) -> RosRobotLink:
    return RosRobotLink(RosRobotConfig(id="AMR-1", url="ws://127.0.0.1:9090", namespace="amr1", transform=SHIFT), fmap)


def odom(x: float, y: float, speed: float = 0.0) -> dict[str, Any]:
    """An odometry message of a robot at plant (x, y), in its own frame."""
    rx, ry, ryaw = to_robot(SHIFT, x, y, 0.0)
    return {
        "pose": {"pose": {"position": {"x": rx, "y": ry, "z": 0.0}, "orientation": quaternion(ryaw)}},
        "twist": {"twist": {"linear": {"x": speed, "y": 0.0, "z": 0.0}}},
    }


def goals(out: Output) -> list[tuple[float, float]]:
    """Plant positions of the goals published."""
    found = []
    for item in out:
        if isinstance(item, Publish):
            assert item.topic == "/amr1/goal_pose" and item.msg_type == "geometry_msgs/msg/PoseStamped"
            x, y, _, _ = plant_pose(SHIFT, {"pose": item.message})
            found.append((round(x, 6), round(y, 6)))
    return found


def events(out: Output, kind: type) -> list[Any]:
    return [e for e in out if isinstance(e, kind)]


def test_goals_go_one_node_at_a_time_and_arrival_moves_the_core(small_map: FacilityMap) -> None:
    link = robot(small_map)
    link.on_pose(odom(0.0, 0.0), 0.0)
    link.node = "A1"
    assert goals(link.drive(("A2", "A3"), 0.0)) == [(6.0, 0.0)], "only the next node is a goal"
    assert link.drive(("A4",), 0.1) == [], "more released: still one goal"
    out = link.on_pose(odom(3.0, 0.0, speed=1.0), 1.0)
    assert events(out, StateReport)[0].x == 3.0 and not events(out, NodeReached)
    out = link.on_pose(odom(5.9, 0.0, speed=1.0), 2.0)  # passing A2 at speed: more is released
    assert events(out, NodeReached) == [NodeReached("AMR-1", "A2")]
    assert goals(out) == [(12.0, 0.0)]
    link.on_pose(odom(11.9, 0.0, speed=1.0), 3.0)
    out = link.on_pose(odom(17.9, 0.0, speed=1.0), 4.0)  # at A4, the end of the base, still moving
    assert events(out, NodeReached) == [], "the end of the base counts only when nearly still"
    out = link.on_pose(odom(18.0, 0.0, speed=0.0), 5.0)
    assert events(out, NodeReached) == [NodeReached("AMR-1", "A4")] and goals(out) == []


def test_an_aborted_goal_or_a_late_one_is_a_rejection(small_map: FacilityMap) -> None:
    link = robot(small_map)
    link.on_pose(odom(0.0, 0.0), 0.0)
    link.node = "A1"
    older = {"status_list": [{"goal_info": {"goal_id": {"uuid": [1]}}, "status": 6}]}
    link.on_goal_status(older, 0.0)  # an abort from before our goal
    link.drive(("A2",), 0.0)
    assert link.on_goal_status(older, 1.0) == [], "not ours"
    ours = {"status_list": [*older["status_list"], {"goal_info": {"goal_id": {"uuid": [2]}}, "status": 6}]}
    (rejected,) = events(link.on_goal_status(ours, 2.0), DriveRejected)
    assert "aborted" in rejected.reason and link.goal is None

    late = robot(small_map)
    late.on_pose(odom(0.0, 0.0), 0.0)
    late.node = "A1"
    late.drive(("A2",), 0.0)  # 6 m at 0.5 m/s x 3 + 10 s: 46 s
    assert late.tick(45.0) == []
    (rejected,) = events(late.tick(47.0), DriveRejected)
    assert "A2" in rejected.reason


def test_pause_stops_where_it_is_and_resume_goes_on(small_map: FacilityMap) -> None:
    link = robot(small_map)
    link.on_pose(odom(0.0, 0.0), 0.0)
    link.node = "A1"
    link.drive(("A2",), 0.0)
    link.on_pose(odom(2.0, 0.0, speed=1.0), 1.0)
    assert goals(link.pause(True, 1.5)) == [(2.0, 0.0)], "a goal where it stands"
    assert link.tick(500.0) == [], "no timeout while paused"
    assert goals(link.resend(300.0)) == [(2.0, 0.0)], "a bridge back while paused: still stopped"
    assert goals(link.pause(False, 501.0)) == [(6.0, 0.0)]
    assert goals(link.resend(502.0)) == [(6.0, 0.0)]


def test_cancel_stops_at_the_next_node(small_map: FacilityMap) -> None:
    link = robot(small_map)
    link.on_pose(odom(0.0, 0.0), 0.0)
    link.node = "A1"
    link.drive(("A2", "A3"), 0.0)
    assert link.cancel(0.5) == []
    out = link.on_pose(odom(6.0, 0.0), 2.0)
    assert events(out, DriveCancelled) == [DriveCancelled("AMR-1", "A2")] and goals(out) == []
    assert link.cancel(3.0) == [DriveCancelled("AMR-1", "A2")], "standing: at once"


def test_actions_without_a_cell_take_the_service_time_and_charging_the_battery(small_map: FacilityMap) -> None:
    link = robot(small_map)
    assert link.start_action(StartAction("AMR-1", ActionKind.PICK, "ST-A"), 0.0) == []
    assert link.tick(14.0) == []
    assert link.tick(15.0) == [ActionFinished("AMR-1", ActionKind.PICK)]
    link.on_battery({"percentage": 0.5}, 20.0)
    assert link.start_action(StartAction("AMR-1", ActionKind.CHARGE, "CH-1", until_battery=0.9), 20.0) == []
    assert link.on_battery({"percentage": 0.89}, 30.0) == []
    assert link.on_battery({"percentage": 0.91}, 40.0) == [ActionFinished("AMR-1", ActionKind.CHARGE)]


def test_action_goals_count_only_the_newest_result(small_map: FacilityMap) -> None:
    """With NavigateToPose goals, a goal replaced by the next node ends cancelled: not a
    failure; an abort of the newest goal is."""
    from fleet.ros.robot import SendGoal

    config = RosRobotConfig(
        id="AMR-1", url="ws://127.0.0.1:9090", namespace="amr1", transform=SHIFT, navigate_action="navigate_to_pose"
    )
    link = RosRobotLink(config, small_map)
    link.on_pose(odom(0.0, 0.0), 0.0)
    link.node = "A1"
    (first,) = link.drive(("A2", "A3"), 0.0)
    assert isinstance(first, SendGoal) and first.action == "/amr1/navigate_to_pose"
    assert first.action_type == "nav2_msgs/action/NavigateToPose" and "pose" in first.goal
    out = link.on_pose(odom(5.9, 0.0, speed=1.0), 1.0)
    (second,) = [o for o in out if isinstance(o, SendGoal)]
    assert link.on_goal_result(first.token, "canceled") == [], "replaced by us"
    assert link.on_goal_result(second.token, "succeeded") == []
    (rejected,) = link.on_goal_result(second.token, "aborted")
    assert isinstance(rejected, DriveRejected) and "A3" in rejected.reason
