"""Integration against a real ROS 2 graph: ROS 2 Jazzy (PyPI wheels), the Rust rosbridge and
rclpy nodes acting as a robot and two robot cells, all inside a network namespace that has only
loopback; the controller's ROS gateway drives a full transport through them
(`tests/ros/stack_run.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ros import stack


def test_a_ros_robot_picks_at_a_robot_cell_and_delivers_through_the_real_stack(tmp_path: Path) -> None:
    why = stack.missing()
    if why is not None:
        pytest.fail(why)
    done = stack.in_private_network("tests.ros.stack_run", str(tmp_path), timeout_s=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, f"{result['error']}\n{result['logs']}"
    # Network safety: the namespace the controller and every ROS process ran in has only lo.
    assert result["own_interfaces"] == ["lo"]
    assert result["ros_interfaces"] == {"bridge": ["lo"], "robot": ["lo"], "cell_a": ["lo"], "cell_b": ["lo"]}
    # The cell's first transfer failed: the robot held at the station until the retry.
    assert result["held_at_cell"] == "loading"
    order = result["order"]
    assert order[-1] == "finished" and "to_pickup" in order and "to_dropoff" in order, order
    assert result["at_dropoff_m"] < 0.3, "it really drove there"
    assert result["dropped"] == 0
