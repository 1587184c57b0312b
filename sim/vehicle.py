"""A simulated vehicle: follows released nodes along lanes with acceleration and braking, does
timed load actions, charges at chargers, and drains its battery per metre driven.

It is the simulator's in-process vehicle adapter: it takes the core's commands (`DriveNodes`,
`StartAction`) and answers with the core's events, as a VDA 5050 vehicle would over MQTT.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

from fleet.events import ActionFinished, ActionKind, Event, NodeReached
from fleet.vda5050.standing import reach
from maps import FacilityMap, VehicleType
from planners.graph import lane_speeds

_CREEP = 0.05  # m/s floor of the braking profile so a vehicle really arrives in finite steps
_STRAIGHT_RAD = math.radians(1.0)  # a change of direction below this needs no turn on the spot
_BACK_SPEED = 0.3  # m/s: a vehicle halted on a lane goes back to the node it came from this slowly


@dataclass(frozen=True, slots=True)
class LaneGeometry:
    """Straight segment between two nodes, with the speed a vehicle may drive on it."""

    ax: float
    ay: float
    bx: float
    by: float
    length: float
    speed: float

    @property
    def heading(self) -> float:
        return math.atan2(self.by - self.ay, self.bx - self.ax)


class SimVehicle:
    """Kinematic point-mass along lanes; footprint is the vehicle type's rectangle at `heading`."""

    def __init__(
        self,
        vehicle_id: str,
        vtype: VehicleType,
        fmap: FacilityMap,
        geometry: dict[tuple[str, str], LaneGeometry],
        node: str,
        battery: float,
    ) -> None:
        self.id = vehicle_id
        self.type = vtype
        self.radius = vtype.radius
        self._map = fmap
        self._geometry = geometry
        start = fmap.node_by_id[node]
        self.node = node
        self.x, self.y, self.heading = start.x, start.y, 0.0
        self.speed = 0.0
        self.battery_wh = battery * vtype.battery_capacity_wh
        self.path: deque[str] = deque()
        self.segment: tuple[str, str] | None = None
        self.progress = 0.0
        self.odometer = 0.0
        self.paused = False  # by the controller (VDA 5050 startPause)
        self.held = False  # by something the controller does not know of (a fault)
        self.speed_factor = 1.0  # below 1 when something slows the vehicle down
        self.loads = 0  # carried now: picks finished minus drops finished
        rate = vtype.turn_rate_deg_s
        self._turn_rate = None if rate is None else math.radians(rate)  # rad/s on the spot; None: turns while driving
        self.turning_s = 0.0  # time spent turning on the spot
        self._action: tuple[ActionKind, float, float | None, float] | None = None  # kind, seconds left, until, power
        self._back: tuple[tuple[str, str], LaneGeometry] | None = None  # driving back along a lane after `halt`

    def use_map(self, fmap: FacilityMap) -> None:
        """The plant's map changed while the vehicle stood still: drive on the new one."""
        self._map = fmap
        self._geometry = lane_geometry_for(fmap, self.type.max_speed)
        here = fmap.node_by_id[self.node]
        self.x, self.y = here.x, here.y

    @property
    def battery(self) -> float:
        return self.battery_wh / self.type.battery_capacity_wh

    @property
    def moving(self) -> bool:
        return self.segment is not None and bool(self.path)

    @property
    def on_lane(self) -> bool:
        """Standing (or driving) between two nodes: after `halt`, it may stand still on a lane."""
        return self.segment is not None

    @property
    def busy(self) -> bool:
        return self.segment is not None or bool(self.path) or self._action is not None

    @property
    def standing_on(self) -> str | None:
        """On a lane, halted or going back: the node within whose reach it is (it stands on that
        node, as a VDA 5050 vehicle reports itself), else None. A vehicle driving on is never on one."""
        if self.segment is None or (self.moving and self._back is None):
            return None
        a, b = self.segment
        if self.progress <= reach(self._map.node_by_id[a]):
            return a
        if self._lane(self.segment).length - self.progress <= reach(self._map.node_by_id[b]):
            return b
        return None

    def drive(self, nodes: tuple[str, ...]) -> None:
        """Drive on to `nodes`. A vehicle halted on a lane drives on to the lane's end if the
        path goes there, else first back to the node it came from (as a vehicle within a node's
        deviation drives onto that node first)."""
        if self.segment is not None and not self.path and nodes and nodes[0] != self.segment[1]:
            a, b = self.segment
            geo = self._lane(self.segment)
            self._back = ((b, a), LaneGeometry(geo.bx, geo.by, geo.ax, geo.ay, geo.length, min(geo.speed, _BACK_SPEED)))
            self.segment, self.progress = (b, a), geo.length - self.progress
            self.path.append(a)
        self.path.extend(nodes)

    def start_action(self, kind: ActionKind, place_id: str, until_battery: float | None) -> None:
        if kind is ActionKind.CHARGE:
            power = next(c.power_w for c in self._map.chargers if c.id == place_id)
            self._action = (kind, math.inf, until_battery, power)
        else:
            service = self._map.station_by_id[place_id].service_time_s
            self._action = (kind, service, None, 0.0)

    def place_at(self, node: str) -> None:
        """Stand at `node` (a standing vehicle told where it is, or moved by hand)."""
        n = self._map.node_by_id[node]
        self.x, self.y, self.node = n.x, n.y, node
        self.segment, self.speed, self._back = None, 0.0, None
        self.path.clear()

    def halt(self) -> None:
        """Stop at once where it is, on a lane if it is on one (VDA 5050 lets a vehicle stop
        immediately on a cancel); the rest of its path is dropped."""
        self.path.clear()
        self.speed = 0.0
        if self.segment is not None and self.progress <= 1e-9:
            self.segment = None  # it had not left the node yet

    def cancel(self) -> None:
        """Stop at the next node: keep only the node ahead when on a lane, drop the rest."""
        keep = 1 if self.segment is not None else 0
        for _ in range(len(self.path) - keep):
            self.path.pop()

    def stop_action(self) -> None:
        """End a running action without a report (a charge stopped from outside)."""
        self._action = None

    @property
    def acting(self) -> bool:
        return self._action is not None

    def step(self, dt: float) -> list[Event]:
        charging = self._action is not None and self._action[0] is ActionKind.CHARGE
        if not charging:  # the computers and sensors draw power whatever the vehicle does
            self.battery_wh = max(0.0, self.battery_wh - self.type.idle_power_w * dt / 3600)
        if self.paused or self.held:
            self.speed = 0.0
            return []
        if self._action is not None:
            return self._act(dt)
        if not self.path:  # standing: at a node, or halted on a lane
            self.speed = 0.0
            return []
        return self._move(dt)

    def _act(self, dt: float) -> list[Event]:
        assert self._action is not None
        kind, left, until, power = self._action
        if kind is ActionKind.CHARGE:
            self.battery_wh = min(self.type.battery_capacity_wh, self.battery_wh + power * dt / 3600)
            if until is None or self.battery >= until:
                self._action = None
                return [ActionFinished(self.id, kind)]
            return []
        left -= dt
        if left <= 1e-9:
            self._action = None
            self.loads = max(0, self.loads + (1 if kind is ActionKind.PICK else -1))
            return [ActionFinished(self.id, kind)]
        self._action = (kind, left, until, power)
        return []

    def _move(self, dt: float) -> list[Event]:
        events: list[Event] = []
        budget = dt
        a = self.type.acceleration
        while budget > 1e-12:
            if self.segment is None:
                if not self.path:
                    self.speed = 0.0
                    break
                self.segment = (self.node, self.path[0])
                self.progress = 0.0
            geo = self._lane(self.segment)
            if self.progress == 0.0 and self._turn_rate is not None:
                budget = self._turn(geo.heading, budget)
                if budget <= 1e-12:
                    break
            to_stop = geo.length - self.progress + self._length_to_next_stop()
            braking = max(math.sqrt(2 * a * max(to_stop, 0.0)), _CREEP)
            target = min(geo.speed, self.type.max_speed, braking) * self.speed_factor
            self.speed = min(self.speed + a * budget, target) if self.speed < target else target
            step = self.speed * budget
            remaining = geo.length - self.progress
            self.heading = geo.heading
            if step < remaining:
                self._advance(geo, step)
                budget = 0.0
            else:
                self._advance(geo, remaining)
                budget -= remaining / self.speed if self.speed > 0 else budget
                reached = self.path.popleft()
                self.node, self.segment, self.progress, self._back = reached, None, 0.0, None
                self.x, self.y = geo.bx, geo.by
                events.append(NodeReached(self.id, reached))
                if not self.path:
                    self.speed = 0.0
                    break
        return events

    def _lane(self, segment: tuple[str, str]) -> LaneGeometry:
        if self._back is not None and self._back[0] == segment:
            return self._back[1]
        return self._geometry[segment]

    def _turn(self, heading: float, budget: float) -> float:
        """Turn on the spot towards `heading` for at most `budget` seconds; the time left."""
        assert self._turn_rate is not None
        diff = math.remainder(heading - self.heading, 2 * math.pi)
        if abs(diff) < _STRAIGHT_RAD:
            self.heading = heading
            return budget
        self.speed = 0.0
        step = self._turn_rate * budget
        if step < abs(diff):
            self.heading += math.copysign(step, diff)
            self.turning_s += budget
            return 0.0
        self.heading = heading
        self.turning_s += abs(diff) / self._turn_rate
        return budget - abs(diff) / self._turn_rate

    def _length_to_next_stop(self) -> float:
        """Metres beyond the current lane to where the vehicle must stand still: the end of its
        path, or, if it turns on the spot, the first node where its direction changes."""
        assert self.segment is not None
        length, heading, at = 0.0, self._lane(self.segment).heading, self.segment[1]
        for nxt in itertools.islice(self.path, 1, None):
            geo = self._geometry[(at, nxt)]
            if self._turn_rate is not None and abs(math.remainder(geo.heading - heading, 2 * math.pi)) >= _STRAIGHT_RAD:
                break
            length, heading, at = length + geo.length, geo.heading, nxt
        return length

    def _advance(self, geo: LaneGeometry, distance: float) -> None:
        self.progress += distance
        self.odometer += distance
        per_m = self.type.consumption_wh_per_m + self.loads * self.type.load_consumption_wh_per_m
        self.battery_wh = max(0.0, self.battery_wh - distance * per_m)
        f = self.progress / geo.length
        self.x = geo.ax + f * (geo.bx - geo.ax)
        self.y = geo.ay + f * (geo.by - geo.ay)


def lane_geometry_for(fmap: FacilityMap, top_speed: float) -> dict[tuple[str, str], LaneGeometry]:
    """Geometry and effective speed of every drivable direction of every lane."""
    nodes = fmap.node_by_id
    speeds = lane_speeds(fmap, top_speed)
    out: dict[tuple[str, str], LaneGeometry] = {}
    for lane in fmap.lanes:
        a, b = nodes[lane.start], nodes[lane.end]
        out[(a.id, b.id)] = LaneGeometry(a.x, a.y, b.x, b.y, lane.length, speeds[lane.id])
        if lane.two_way:
            out[(b.id, a.id)] = LaneGeometry(b.x, b.y, a.x, a.y, lane.length, speeds[lane.id])
    return out
