"""ROS 2 messages to and from plant values: frames, quaternions, stamps, battery, goal status;
round trips, and malformed messages refused with ValueError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.ros.config import RosConfig, RosRobotConfig, Transform2D
from fleet.ros.convert import (
    battery_fraction,
    goal_pose,
    goal_statuses,
    plant_pose,
    quaternion,
    stamp,
    to_plant,
    to_robot,
    wrap,
    yaw_of,
)

coords = st.floats(-1e4, 1e4)
angles = st.floats(-math.pi, math.pi)


@given(tx=coords, ty=coords, theta=angles, x=coords, y=coords, yaw=angles)
def test_frames_round_trip(tx: float, ty: float, theta: float, x: float, y: float, yaw: float) -> None:
    t = Transform2D(x=tx, y=ty, theta=theta)
    px, py, pyaw = to_plant(t, *to_robot(t, x, y, yaw))
    assert px == pytest.approx(x, abs=1e-6) and py == pytest.approx(y, abs=1e-6)
    assert abs(wrap(pyaw - yaw)) < 1e-9


@given(yaw=angles)
def test_quaternion_round_trip(yaw: float) -> None:
    assert abs(wrap(yaw_of(quaternion(yaw)) - yaw)) < 1e-9


def test_a_quarter_turn_and_a_shift() -> None:
    t = Transform2D(x=10.0, y=5.0, theta=math.pi / 2)
    x, y, yaw = to_plant(t, 1.0, 0.0, 0.0)
    assert (x, y, yaw) == pytest.approx((10.0, 6.0, math.pi / 2))


def test_goal_pose_is_in_the_robot_frame_and_reads_back() -> None:
    t = Transform2D(x=-2.0, y=3.0, theta=0.3)
    goal = goal_pose(t, "map", 6.0, 4.0, 1.0, now=1700000000.25)
    assert goal["header"] == {"stamp": {"sec": 1700000000, "nanosec": 250000000}, "frame_id": "map"}
    back = plant_pose(t, {"pose": goal})
    assert back[:3] == pytest.approx((6.0, 4.0, 1.0)) and back[3] is None


def test_odometry_gives_speed_and_bad_poses_are_refused() -> None:
    odom = {
        "pose": {"pose": {"position": {"x": 1.0, "y": 2.0, "z": 0.0}, "orientation": quaternion(0.5)}},
        "twist": {"twist": {"linear": {"x": 0.3, "y": 0.4, "z": 0.0}}},
    }
    assert plant_pose(Transform2D(), odom) == pytest.approx((1.0, 2.0, 0.5, 0.5))
    for bad in ({}, {"pose": {"pose": {"position": {"x": "a"}}}}, {"pose": None}):
        with pytest.raises(ValueError):
            plant_pose(Transform2D(), bad)
    with pytest.raises(ValueError, match="finite"):
        plant_pose(Transform2D(), {"pose": {"pose": {"position": {"x": math.inf, "y": 0}, "orientation": {}}}})


def test_stamp_battery_and_goal_status() -> None:
    assert stamp(2.5) == {"sec": 2, "nanosec": 500000000}
    assert battery_fraction({"percentage": 0.42}) == 0.42
    assert battery_fraction({"percentage": float("nan")}) is None
    assert battery_fraction({"percentage": 7}) == 1.0
    assert battery_fraction({}) is None
    statuses = {
        "status_list": [
            {"goal_info": {"goal_id": {"uuid": [1, 2, 255]}}, "status": 6},
            {"goal_info": {"goal_id": {"uuid": "abc"}}, "status": 4},
            {"goal_info": {}, "status": 2},
            "garbage",
        ]
    }
    assert goal_statuses(statuses) == {"0102ff": "aborted", "abc": "succeeded"}
    assert goal_statuses({"status_list": 5}) == {}


def test_configuration_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match="rosbridge URL"):
        RosRobotConfig(id="AMR-1", url="http://127.0.0.1:9090")
    with pytest.raises(ValueError, match="nominal_speed_mps"):
        RosRobotConfig(id="AMR-1", url="ws://127.0.0.1:9090", nominal_speed_mps=0)
    with pytest.raises(ValueError, match="extra"):
        RosConfig.model_validate({"robots": [{"id": "AMR-1", "url": "ws://127.0.0.1:9090", "speed": 1}]})
    robot = RosRobotConfig(id="AMR-1", url="ws://127.0.0.1:9090", namespace="/amr1/")
    assert robot.topic("goal_pose") == "/amr1/goal_pose"
    assert RosRobotConfig(id="AMR-2", url="ws://127.0.0.1:9090").topic("odom") == "/odom"
