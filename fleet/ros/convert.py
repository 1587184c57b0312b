"""ROS 2 messages (as rosbridge carries them: JSON objects) to and from plant values. Pure.

Frames: a robot works in its own map frame; `Transform2D` takes it to the plant's
(plant = rotate(theta) * robot + (x, y)). Headings are yaw angles about z.
"""

from __future__ import annotations

import math
from typing import Any

from fleet.ros.config import Transform2D

Message = dict[str, Any]

# action_msgs/msg/GoalStatus
GOAL_STATUS = {0: "unknown", 1: "accepted", 2: "executing", 3: "canceling", 4: "succeeded", 5: "canceled", 6: "aborted"}


def wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


def to_plant(t: Transform2D, x: float, y: float, yaw: float) -> tuple[float, float, float]:
    c, s = math.cos(t.theta), math.sin(t.theta)
    return t.x + c * x - s * y, t.y + s * x + c * y, wrap(yaw + t.theta)


def to_robot(t: Transform2D, x: float, y: float, yaw: float) -> tuple[float, float, float]:
    c, s = math.cos(t.theta), math.sin(t.theta)
    dx, dy = x - t.x, y - t.y
    return c * dx + s * dy, -s * dx + c * dy, wrap(yaw - t.theta)


def yaw_of(q: Message) -> float:
    """Yaw of a geometry_msgs/Quaternion."""
    x, y, z, w = (float(q.get(k, 0.0)) for k in ("x", "y", "z", "w"))
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def quaternion(yaw: float) -> Message:
    return {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2.0), "w": math.cos(yaw / 2.0)}


def stamp(now: float) -> Message:
    """builtin_interfaces/Time of a wall-clock second count."""
    sec = math.floor(now)
    return {"sec": sec, "nanosec": round((now - sec) * 1e9) % 1_000_000_000}


def goal_pose(t: Transform2D, frame: str, x: float, y: float, yaw: float, now: float) -> Message:
    """geometry_msgs/PoseStamped for a plant position, in the robot's frame."""
    rx, ry, ryaw = to_robot(t, x, y, yaw)
    return {
        "header": {"stamp": stamp(now), "frame_id": frame},
        "pose": {"position": {"x": rx, "y": ry, "z": 0.0}, "orientation": quaternion(ryaw)},
    }


def plant_pose(t: Transform2D, message: Message) -> tuple[float, float, float, float | None]:
    """(x, y, heading, speed) in the plant from nav_msgs/Odometry (speed from its twist) or
    geometry_msgs/PoseWithCovarianceStamped (no speed). Raises ValueError on a malformed one."""
    try:
        pose = message["pose"]["pose"]
        p, q = pose["position"], pose["orientation"]
        x, y, yaw = to_plant(t, float(p["x"]), float(p["y"]), yaw_of(q))
        speed = None
        if "twist" in message:
            lin = message["twist"]["twist"]["linear"]
            speed = math.hypot(float(lin["x"]), float(lin["y"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a pose message: {exc!r}") from None
    if not all(math.isfinite(v) for v in (x, y, yaw)):
        raise ValueError("pose is not finite")
    return x, y, yaw, speed if speed is not None and math.isfinite(speed) else None


def battery_fraction(message: Message) -> float | None:
    """sensor_msgs/BatteryState's percentage (0..1; NaN when unmeasured) as 0..1, else None."""
    value = message.get("percentage")
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, float(value)))


def goal_statuses(message: Message) -> dict[str, str]:
    """Goal id (its UUID bytes as hex) -> status word, from an action_msgs/GoalStatusArray;
    entries that are not well formed are left out."""
    out: dict[str, str] = {}
    entries = message.get("status_list")
    for entry in entries if isinstance(entries, list) else []:
        try:
            uuid = entry["goal_info"]["goal_id"]["uuid"]
            key = bytes(int(b) & 0xFF for b in uuid).hex() if isinstance(uuid, list) else str(uuid)
            out[key] = GOAL_STATUS.get(entry["status"], "unknown")
        except (KeyError, TypeError, ValueError):
            continue
    return out
