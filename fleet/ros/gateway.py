"""The controller's side of ROS 2: robots and robot cells over rosbridge, as core events in and
core commands out, on the controller's loop (the same contract as `VdaGateway`).

`apply` takes the commands that concern ROS robots, and every pick or drop at a station a
robot cell serves (whatever the vehicle: a VDA 5050 cart waits for the cell the same way), and
hands back the rest for the other adapters. Bridge callbacks only queue events
(`take_events`); the shell feeds them to the core.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from fleet.cells import CellHandshake, CellRequest, parse_cell_status, split_transfers
from fleet.core import Controller
from fleet.events import ActionKind, CancelDrive, Command, DriveNodes, Event, PauseVehicle, StartAction, StopCharging
from fleet.ros.bridge import RosBridge
from fleet.ros.config import RosCellConfig, RosConfig
from fleet.ros.convert import GOAL_STATUS as STATUS_WORDS
from fleet.ros.robot import Output, Publish, RosRobotLink, SendGoal

log = logging.getLogger(__name__)

TRIGGER = "std_srvs/srv/Trigger"
STRING = "std_msgs/msg/String"
BATTERY = "sensor_msgs/msg/BatteryState"
GOAL_STATUS = "action_msgs/msg/GoalStatusArray"
PLACE_WITHIN_M = 0.5  # a robot appears on the map at the node it stands this close to


class RosGateway:
    def __init__(self, controller: Controller, config: RosConfig, bridge: Callable[..., Any] = RosBridge) -> None:
        self.controller = controller
        self.config = config
        self._make_bridge = bridge
        self.bridges: dict[str, Any] = {}
        self.robots = {r.id: RosRobotLink(r, controller.map) for r in config.robots}
        self.cells = {c.station: CellHandshake(c.station, c.timeout_s) for c in config.cells}
        self._cell_config = {c.station: c for c in config.cells}
        self._events: list[Event] = []
        self.on_events: Callable[[], None] | None = None
        self.dropped = 0  # malformed messages logged and dropped
        default_type = controller.map.vehicle_types[0].id
        self._type = {r.id: r.type_id or default_type for r in config.robots}
        unknown = [c.station for c in config.cells if c.station not in controller.map.station_by_id]
        if unknown:
            raise ValueError(f"robot cells at stations not on the map: {', '.join(unknown)}")

    # ---- start and stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Register the robots and connect to every bridge (call on the running loop)."""
        for rid, vtype in self._type.items():
            self.controller.register_vehicle(rid, vtype)
        for r in self.config.robots:
            b, link = self._bridge(r.url), self.robots[r.id]
            b.subscribe(r.topic(r.pose_topic), r.pose_type, self._guard(r.id, partial(self._on_pose, link)))
            if r.battery_topic:
                b.subscribe(r.topic(r.battery_topic), BATTERY, self._guard(r.id, self._timed(link.on_battery)))
            if r.status_topic:
                b.subscribe(r.topic(r.status_topic), GOAL_STATUS, self._guard(r.id, self._timed(link.on_goal_status)))
        for c in self.config.cells:
            cell = self.cells[c.station]

            def on_status(message: dict[str, Any], cell: CellHandshake = cell) -> list[Event]:
                return cell.on_status(parse_cell_status(str(message.get("data", ""))), self._now())

            self._bridge(c.url).subscribe(c.status_topic, STRING, self._guard(c.station, on_status))

    def _timed(self, handler: Callable[[dict[str, Any], float], Output]) -> Callable[[dict[str, Any]], Output]:
        return lambda message: handler(message, self._now())

    def stop(self) -> None:
        for b in self.bridges.values():
            b.close()

    def _bridge(self, url: str) -> Any:
        if url not in self.bridges:
            self.bridges[url] = self._make_bridge(url, on_connection=partial(self._on_connection, url))
        return self.bridges[url]

    # ---- the shell's side ---------------------------------------------------------------------

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def tick(self) -> None:
        """Timers of the robots (goal deadlines, actions) and of the cells (transfer timeouts)."""
        now = self._now()
        for link in self.robots.values():
            self._emit(link.vehicle_id, link.tick(now))
        for cell in self.cells.values():
            self._emit(None, list(cell.tick(now)))

    def apply(self, commands: list[Command]) -> list[Command]:
        """Carry out the commands for ROS robots and cells; return the others."""
        now = self._now()
        requests, commands = split_transfers(commands, self.cells, now)
        for request in requests:
            self._request_transfer(request)
        rest: list[Command] = []
        for cmd in commands:
            link = self.robots.get(getattr(cmd, "vehicle_id", ""))
            if link is None:
                rest.append(cmd)
            elif isinstance(cmd, DriveNodes):
                self._emit(link.vehicle_id, link.drive(cmd.nodes, now))
            elif isinstance(cmd, StartAction):
                self._emit(link.vehicle_id, link.start_action(cmd, now))
            elif isinstance(cmd, PauseVehicle):
                self._emit(link.vehicle_id, link.pause(cmd.paused, now))
            elif isinstance(cmd, CancelDrive):
                self._emit(link.vehicle_id, link.cancel(now))
            elif isinstance(cmd, StopCharging):
                self._emit(link.vehicle_id, link.stop_charging())
            else:
                rest.append(cmd)  # InitPosition: a ROS robot localises itself
        return rest

    # ---- the operator's side (API) ------------------------------------------------------------

    def retry_transfer(self, station_id: str) -> None:
        self._request_transfer(self._cell(station_id).retry(self._now()))

    def abort_transfer(self, station_id: str, by: str) -> None:
        self._emit(None, list(self._cell(station_id).abort(by)))

    def _cell(self, station_id: str) -> CellHandshake:
        if station_id not in self.cells:
            raise KeyError(station_id)
        return self.cells[station_id]

    # ---- helpers ------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.controller.clock.now()

    def _request_transfer(self, request: CellRequest) -> None:
        c: RosCellConfig = self._cell_config[request.station_id]
        cell = self.cells[request.station_id]
        service = c.load_service if request.action is ActionKind.PICK else c.unload_service
        self._bridge(c.url).call(
            service,
            TRIGGER,
            {},
            lambda answer: self._emit(
                None, cell.on_answer(bool(answer.get("success")), str(answer.get("message", "")), self._now())
            ),
            lambda problem: self._emit(None, cell.on_unreachable(problem)),
            timeout_s=min(10.0, c.timeout_s),
        )

    def _send_goal(self, link: RosRobotLink, goal: SendGoal) -> None:
        def result(status: object) -> None:
            word = STATUS_WORDS.get(status, "unknown") if isinstance(status, int) else str(status)
            self._emit(link.vehicle_id, link.on_goal_result(goal.token, word))

        self._bridge(link.config.url).send_goal(goal.action, goal.action_type, goal.goal, result)

    def _on_pose(self, link: RosRobotLink, message: dict[str, Any]) -> Output:
        out = link.on_pose(message, self._now())
        v = self.controller.vehicles.get(link.vehicle_id)
        if v is not None and not v.placed:
            node = link.nearest_node(PLACE_WITHIN_M)
            if node is None:
                log.warning("%s is not within %.1f m of a node: not placed yet", link.vehicle_id, PLACE_WITHIN_M)
                return []
            try:
                self.controller.add_vehicle(link.vehicle_id, self._type[link.vehicle_id], node, link.battery or 1.0)
            except ValueError as exc:
                log.warning("%s not placed, tried again on its next pose: %s", link.vehicle_id, exc)
                return []
            link.node = node
            link.online = True
        return out

    def _on_connection(self, url: str, up: bool) -> None:
        now = self._now()
        for link in self.robots.values():
            if link.config.url != url:
                continue
            out = link.connection(up, "" if up else f"rosbridge {url} lost")
            if up and link.goal is not None:
                out += link.resend(now)
            self._emit(link.vehicle_id, out)

    def _guard(self, source: str, handler: Callable[[dict[str, Any]], Output | list[Event]]) -> Callable[[Any], None]:
        """A message handler that logs and drops what it cannot read, and never raises into roslibpy."""

        def handle(message: Any) -> None:
            try:
                out = handler(dict(message))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                self.dropped += 1
                log.warning("dropped a malformed message for %s: %s", source, exc)
                return
            self._emit(source if source in self.robots else None, list(out))

        return handle

    def _emit(self, robot_id: str | None, out: list[Any]) -> None:
        placed = self.controller.vehicles
        for item in out:
            if isinstance(item, Publish | SendGoal):
                link = self.robots.get(robot_id or "")
                if link is None:
                    continue
                if isinstance(item, Publish):
                    self._bridge(link.config.url).publish(item.topic, item.msg_type, item.message)
                else:
                    self._send_goal(link, item)
                continue
            vid = getattr(item, "vehicle_id", None)
            if vid is None or (vid in placed and placed[vid].placed):
                self._events.append(item)
        if self._events and self.on_events is not None:
            self.on_events()
