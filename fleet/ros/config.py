"""How a ROS 2 robot or robot cell is reached: a small file per plant, no code per robot.

Only standard message types: geometry_msgs/PoseStamped goals (Nav2's `goal_pose` topic, or its
NavigateToPose action where the bridge carries actions: `navigate_action`),
nav_msgs/Odometry or geometry_msgs/PoseWithCovarianceStamped for the pose, sensor_msgs/
BatteryState, action_msgs/GoalStatusArray for the navigator's verdict (Nav2 publishes it on
`navigate_to_pose/_action/status`); cells answer a std_srvs/Trigger service and report on a
std_msgs/String topic (`fleet.cells`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Transform2D(_Strict):
    """Robot map frame to plant frame: plant = rotate(theta) * robot + (x, y)."""

    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname or parts.port is None:
        raise ValueError(f"'{url}' is not a rosbridge URL like ws://127.0.0.1:9090")
    return url


BridgeUrl = Annotated[str, AfterValidator(_check_url)]


class RosRobotConfig(_Strict):
    """One ROS 2 mobile robot (Nav2 or alike). Topic names are relative to `namespace`."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    type_id: str | None = None  # the map's vehicle type; the first one if not given
    url: BridgeUrl
    namespace: str = ""
    frame: str = "map"
    transform: Transform2D = Transform2D()
    goal_topic: str = "goal_pose"
    # Where the bridge carries actions: goals as this action (Nav2's NavigateToPose), its result
    # telling an abort; None sends them on `goal_topic` and reads `status_topic` instead.
    navigate_action: str | None = None
    navigate_action_type: str = "nav2_msgs/action/NavigateToPose"
    pose_topic: str = "odom"
    pose_type: Literal["nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseWithCovarianceStamped"] = "nav_msgs/msg/Odometry"
    battery_topic: str | None = "battery_state"
    status_topic: str | None = "navigate_to_pose/_action/status"
    arrive_within_m: float = Field(0.25, gt=0)  # at a node when this close and nearly still
    still_below_mps: float = Field(0.05, gt=0)
    # A goal not reached within distance / nominal speed x factor + slack is a failure.
    nominal_speed_mps: float = Field(0.5, gt=0)
    timeout_factor: float = Field(3.0, ge=1)
    timeout_slack_s: float = Field(10.0, ge=0)

    def topic(self, name: str) -> str:
        ns = self.namespace.strip("/")
        return f"/{ns}/{name}" if ns else f"/{name.lstrip('/')}"


class RosCellConfig(_Strict):
    """A robot cell serving a station: std_srvs/Trigger services to load and unload a vehicle
    standing there, and a std_msgs/String status topic (`fleet.cells.parse_cell_status`)."""

    station: str
    url: BridgeUrl
    load_service: str  # puts material onto the vehicle (the vehicle's pick)
    unload_service: str  # takes material off it (the vehicle's drop)
    status_topic: str
    timeout_s: float = Field(120.0, gt=0)


class RosConfig(_Strict):
    robots: list[RosRobotConfig] = []
    cells: list[RosCellConfig] = []


def load_ros_config(path: Path) -> RosConfig:
    """The robots and cells of a YAML file (pydantic names every bad field)."""
    return RosConfig.model_validate(yaml.safe_load(path.read_text()) or {})
