"""One ROS 2 mobile robot as the core sees a vehicle: node-by-node goals out, pose, battery and
the navigator's verdict in. Pure: messages and the time in, core events and messages to publish
out; the gateway (`fleet.ros.gateway`) carries them over rosbridge.

Traffic control holds because the robot only ever has one node as its goal: the next one the
traffic manager released. It gets the following goal when it is within `arrive_within_m` of
the current one (and, at the end of what is released, when it is also nearly still), so it does
not stop at every node on a free run. A goal not reached in time, or one the navigator aborts,
is a `DriveRejected` (the core takes the robot out of service and re-plans its orders).
Goals go on a topic (`goal_pose`, the navigator's status topic telling aborts) or, where the
bridge carries actions, as NavigateToPose action goals (their result telling aborts).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from fleet.events import (
    ActionFinished,
    ActionKind,
    ConnectionChanged,
    DriveCancelled,
    DriveRejected,
    Event,
    NodeReached,
    StartAction,
    StateReport,
)
from fleet.ros.config import RosRobotConfig
from fleet.ros.convert import Message, battery_fraction, goal_pose, goal_statuses, plant_pose
from maps import FacilityMap


@dataclass(frozen=True, slots=True)
class Publish:
    """A message for a ROS topic (absolute name)."""

    topic: str
    msg_type: str
    message: Message


@dataclass(frozen=True, slots=True)
class SendGoal:
    """A goal for a ROS action (absolute name); its result comes back to `on_goal_result`
    with `token`."""

    action: str
    action_type: str
    goal: Message
    token: int


Output = list[Event | Publish | SendGoal]

POSE_STAMPED = "geometry_msgs/msg/PoseStamped"


class RosRobotLink:
    """Protocol state of one robot. Single writer: the controller's loop."""

    def __init__(self, config: RosRobotConfig, fmap: FacilityMap) -> None:
        self.config = config
        self.map = fmap
        self.node: str | None = None  # the node it stands at or passed last
        self.pose: tuple[float, float, float] | None = None
        self.speed = 0.0
        self.battery: float | None = None
        self.online = False
        self._ahead: deque[str] = deque()  # released, not yet its goal
        self._goal: str | None = None
        self._goal_deadline = math.inf
        self._goal_ids_before: set[str] = set()  # navigator goals that are not ours
        self._seen_goal_ids: set[str] = set()
        self._paused = False
        self._cancelling = False
        self._action: tuple[ActionKind, float, float | None] | None = None  # kind, end time, until battery
        self._last_pose_at: float | None = None
        self._goal_token = 0  # of the newest action goal sent

    @property
    def vehicle_id(self) -> str:
        return self.config.id

    @property
    def goal(self) -> str | None:
        return self._goal

    # ---- commands ---------------------------------------------------------------------------

    def drive(self, nodes: tuple[str, ...], now: float) -> Output:
        """The traffic manager released `nodes` after what the robot already has."""
        self._ahead.extend(nodes)
        return self._next_goal(now)

    def pause(self, paused: bool, now: float) -> Output:
        """Paused: a goal where the robot is now, so it stops there; resumed: the node again."""
        self._paused = paused
        return self.resend(now)

    def resend(self, now: float) -> Output:
        """The goal as it stands (also after the bridge came back: it may have been lost with
        it): the stop goal while paused, else the node, whose fate alone counts from now on."""
        if self._goal is None:
            return self._next_goal(now)
        if self._paused:
            if self.pose is None:
                return []
            x, y, yaw = self.pose
            return [self._publish_goal(x, y, yaw, now)]
        self._goal_deadline = now + self._timeout_for(self._goal)
        self._goal_ids_before = set(self._seen_goal_ids)
        return [self._goal_message(self._goal, now)]

    def cancel(self, now: float) -> Output:
        """Stop at the node it is heading to and drop the rest (it answers `DriveCancelled`)."""
        self._ahead.clear()
        if self._goal is None:
            return [DriveCancelled(self.vehicle_id, self.node)] if self.node else []
        self._cancelling = True
        return []

    def start_action(self, cmd: StartAction, now: float) -> Output:
        """Pick or drop at a station no cell serves: the station's service time (the load is
        handled there by others); charge: until the battery reports `until_battery`."""
        if cmd.action is ActionKind.CHARGE:
            self._action = (ActionKind.CHARGE, math.inf, cmd.until_battery)
        else:
            station = self.map.station_by_id.get(cmd.place_id)
            service = station.service_time_s if station else 0.0
            self._action = (cmd.action, now + service, None)
        return self.tick(now)

    def stop_charging(self) -> Output:
        """An order needs the robot: its charge ends now."""
        if self._action is None or self._action[0] is not ActionKind.CHARGE:
            return []
        self._action = None
        return [ActionFinished(self.vehicle_id, ActionKind.CHARGE)]

    def connection(self, online: bool, reason: str = "") -> Output:
        if online == self.online:
            return []
        self.online = online
        return [ConnectionChanged(self.vehicle_id, online, reason)]

    # ---- messages from the robot --------------------------------------------------------------

    def on_pose(self, message: Message, now: float) -> Output:
        """A pose (odometry or localisation); raises ValueError if it is not one."""
        x, y, yaw, speed = plant_pose(self.config.transform, message)
        if speed is None:  # no twist in the message: from the last pose
            if self.pose is not None and self._last_pose_at is not None and now > self._last_pose_at:
                speed = math.hypot(x - self.pose[0], y - self.pose[1]) / (now - self._last_pose_at)
            else:
                speed = 0.0
        self.pose, self.speed, self._last_pose_at = (x, y, yaw), speed, now
        battery = self.battery if self.battery is not None else 1.0
        out: Output = [StateReport(self.vehicle_id, x, y, yaw, battery)]
        if self._goal is not None and self._arrived(self._goal):
            reached, self._goal = self._goal, None
            self.node = reached
            out.append(NodeReached(self.vehicle_id, reached))
            if self._cancelling:
                self._cancelling = False
                out.append(DriveCancelled(self.vehicle_id, reached))
            else:
                out += self._next_goal(now)
        return out

    def on_battery(self, message: Message, now: float) -> Output:
        value = battery_fraction(message)
        if value is not None:
            self.battery = value
        return self.tick(now)

    def on_goal_status(self, message: Message, now: float) -> Output:
        """The navigator's goals: one of ours aborted (or cancelled by someone else) fails the drive."""
        statuses = goal_statuses(message)
        self._seen_goal_ids |= set(statuses)
        if self._goal is None:
            return []
        for goal_id, status in statuses.items():
            if goal_id in self._goal_ids_before or status not in ("aborted", "canceled"):
                continue
            if self._paused:
                continue  # our own stop goal replaced the navigation goal
            failed, self._goal = self._goal, None
            self._ahead.clear()
            return [DriveRejected(self.vehicle_id, f"the navigator {status} the goal {failed}")]
        return []

    def on_goal_result(self, token: int, status: str) -> Output:
        """The result of an action goal: an abort of the newest one fails the drive (goals we
        replaced ourselves, by the next node or a pause, end cancelled or aborted: not ours to
        count)."""
        if token != self._goal_token or self._goal is None or self._paused or status not in ("aborted", "canceled"):
            return []
        failed, self._goal = self._goal, None
        self._ahead.clear()
        return [DriveRejected(self.vehicle_id, f"the navigator {status} the goal {failed}")]

    def tick(self, now: float) -> Output:
        """Timers: the goal's deadline, the end of an action."""
        out: Output = []
        if self._goal is not None and not self._paused and now > self._goal_deadline:
            late, self._goal = self._goal, None
            self._ahead.clear()
            out.append(DriveRejected(self.vehicle_id, f"not at {late} within {self._timeout_for(late):.0f} s"))
        if self._action is not None:
            kind, end, until = self._action
            charged = kind is ActionKind.CHARGE and (until is None or (self.battery or 0.0) >= until)
            if charged or (kind is not ActionKind.CHARGE and now >= end):
                self._action = None
                out.append(ActionFinished(self.vehicle_id, kind))
        return out

    # ---- helpers ----------------------------------------------------------------------------

    def _next_goal(self, now: float) -> Output:
        if self._goal is not None or self._paused or not self._ahead:
            return []
        self._goal = self._ahead.popleft()
        self._goal_deadline = now + self._timeout_for(self._goal)
        self._goal_ids_before = set(self._seen_goal_ids)
        return [self._goal_message(self._goal, now)]

    def _timeout_for(self, node_id: str) -> float:
        n = self.map.node_by_id[node_id]
        x, y = (self.pose[0], self.pose[1]) if self.pose else (n.x, n.y)
        c = self.config
        return math.hypot(n.x - x, n.y - y) / c.nominal_speed_mps * c.timeout_factor + c.timeout_slack_s

    def _goal_message(self, node_id: str, now: float) -> Publish | SendGoal:
        n = self.map.node_by_id[node_id]
        heading_from = self.map.node_by_id[self.node] if self.node else None
        if heading_from is not None and (heading_from.x, heading_from.y) != (n.x, n.y):
            yaw = math.atan2(n.y - heading_from.y, n.x - heading_from.x)
        else:
            yaw = self.pose[2] if self.pose else 0.0
        return self._publish_goal(n.x, n.y, yaw, now)

    def _publish_goal(self, x: float, y: float, yaw: float, now: float) -> Publish | SendGoal:
        c = self.config
        pose = goal_pose(c.transform, c.frame, x, y, yaw, now)
        if c.navigate_action is None:
            return Publish(c.topic(c.goal_topic), POSE_STAMPED, pose)
        self._goal_token += 1
        return SendGoal(c.topic(c.navigate_action), c.navigate_action_type, {"pose": pose}, self._goal_token)

    def _arrived(self, node_id: str) -> bool:
        if self.pose is None:
            return False
        n = self.map.node_by_id[node_id]
        if math.hypot(n.x - self.pose[0], n.y - self.pose[1]) > self.config.arrive_within_m:
            return False
        # Driving on: the next node is released. Stopping: nearly still at the end of the base.
        return bool(self._ahead) or self.speed < self.config.still_below_mps

    def nearest_node(self, within_m: float) -> str | None:
        """The map node the robot stands on, if it is within `within_m` of one."""
        if self.pose is None:
            return None
        x, y, _ = self.pose
        best = min(self.map.nodes, key=lambda n: math.hypot(n.x - x, n.y - y))
        return best.id if math.hypot(best.x - x, best.y - y) <= within_m else None
