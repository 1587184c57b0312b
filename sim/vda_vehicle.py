"""A simulated vehicle that speaks VDA 5050 2.0/2.1 on the wire (a fake for the plant's vehicles,
which cannot run here): it takes order and instantActions messages and answers with state,
connection and factsheet messages exactly as the specification asks of a real vehicle, so the
controller cannot tell it from one. Transport-free: the shell delivers messages to `on_message`
and sends what `take_outbox` returns, in-process or over MQTT, with the same code.

Behaviour, by specification section (VDA 5050 2.1):
- 6.6.2 order acceptance: an update with a lower orderUpdateId is rejected (orderUpdateError),
  one with the same is ignored, a higher one must start at the last base node with its
  sequenceId; a new orderId is accepted only when the previous order is done and its first node
  is within allowedDeviationXY (default 0.5 m) of the vehicle, else noRouteError; unknown action
  types are a validationError. Rejections are reported in `errors` naming the orderId.
- 6.6 the vehicle drives the released base only, stops at its end and waits for an update.
- node actions (pick, drop) run on arrival, HARD blocking, with the station's service time.
- 6.8 instant actions: cancelOrder, startPause/stopPause, stateRequest, factsheetRequest,
  startCharging/stopCharging, initPosition; each tracked in actionStates to FINISHED/FAILED.
- 6.10 state at least every `state_interval_s` and on every event; 6.14 connection ONLINE
  (retained) on connect, CONNECTIONBROKEN as last will.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from fleet.events import ActionFinished, ActionKind, NodeReached
from fleet.vda5050.master import QOS, Outgoing
from fleet.vda5050.messages import Action, InstantActions, Order, parse_message, timestamp
from fleet.vda5050.topics import TopicLayout, VehicleKey
from maps import FacilityMap, VehicleType
from sim.vehicle import LaneGeometry, SimVehicle

KNOWN_ACTIONS = frozenset(
    {
        "pick",
        "drop",
        "cancelOrder",
        "startPause",
        "stopPause",
        "stateRequest",
        "factsheetRequest",
        "startCharging",
        "stopCharging",
        "initPosition",
    }
)


@dataclass
class _ActionRecord:
    action: Action
    status: str = "WAITING"
    result: str | None = None
    node_seq: int | None = None  # None for instant actions


@dataclass(frozen=True, slots=True)
class VdaBehaviour:
    """Ways real vehicles differ, which the simulated one can be made to show (the fault runs
    and tests use them; the defaults are the specification's reading):

    - `supported`: the action types it executes; others are refused, as instant actions FAILED
      and as node actions with an orderError (a vendor's vehicle that cannot charge, say).
    - `state_every_s`: states only on events and this often (a vendor's 30 s), not each second.
    - `max_order_nodes`: the most nodes an order may have, stated in its factsheet.
    - `id_len`, `size`: what its factsheet states of id lengths and its size (the controller
      gives a vehicle no orders whose ids it could not read, or that is larger than its type).
    - `stop_at_once`: a cancel stops it where it is, on a lane if need be (the specification
      allows this beside stopping at the next node; a vendor's vehicle did so).
    Its factsheet lists the actions it supports (protocolFeatures.agvActions).
    Restarting its software (`VdaSimVehicle.restart`) loses the order it drove, as vehicles do.
    """

    supported: frozenset[str] | None = None
    state_every_s: float | None = None
    max_order_nodes: int | None = None  # the factsheet's protocolLimits (None: no limit stated)
    stop_at_once: bool = False
    id_len: int | None = None  # the factsheet's maxStringLens.idLen (None: not stated)
    size: tuple[float, float] | None = None  # (width, length) its factsheet states (None: its type's)


# A vendor's vehicle as a third-party implementation behaved against this controller: it stops
# at once on a cancel, reports on events and only every 30 s besides, and refuses the state and
# factsheet requests (vda-5050-lib 1.4.0's virtual AGV did all of these).
VENDOR = VdaBehaviour(
    supported=KNOWN_ACTIONS - {"stateRequest", "factsheetRequest"}, state_every_s=30.0, stop_at_once=True
)
BEHAVIOURS = {"spec": VdaBehaviour(), "vendor": VENDOR}


class VdaSimVehicle:
    def __init__(
        self,
        key: VehicleKey,
        fmap: FacilityMap,
        vtype: VehicleType,
        geometry: dict[tuple[str, str], LaneGeometry],
        node: str,
        battery: float,
        version: str = "2.0.0",
        layout: TopicLayout | None = None,
        state_interval_s: float = 1.0,
        behaviour: VdaBehaviour | None = None,
    ) -> None:
        self.key = key
        self.behaviour = behaviour or VdaBehaviour()
        if self.behaviour.state_every_s is not None:
            state_interval_s = self.behaviour.state_every_s
        self.map = fmap
        self.body = SimVehicle(key.serial_number, vtype, fmap, geometry, node, battery)
        self.version = version
        self.layout = layout or TopicLayout()
        self.state_interval_s = state_interval_s
        self.order_id = ""
        self.order_update_id = 0
        self.last_node_id = node
        self.last_node_seq = 0
        self._nodes: list[tuple[str, int, bool]] = []  # (nodeId, sequenceId, released) of the current order
        self._edges: list[tuple[str, int, bool]] = []
        self._actions: dict[str, _ActionRecord] = {}
        self._queue: list[str] = []  # node action ids waiting to start at the current node
        self._running: str | None = None  # node action id in progress
        self._charging_action: str | None = None
        self._cancel: str | None = None  # cancelOrder action running until the vehicle stands
        self.operating_mode = "AUTOMATIC"  # tests switch it as an operator on the vehicle would
        self.hardware_errors: list[dict[str, Any]] = []  # faults reported besides order rejections
        self.loads: list[dict[str, Any]] = []  # what the load sensor sees
        self.stops_on_lanes = 0  # cancels that stopped it between two nodes (`stop_at_once`)
        self._errors: list[dict[str, Any]] = []
        self._headers: dict[str, int] = {}
        self._outbox: list[Outgoing] = []
        self._next_state = 0.0
        self._dirty = True

    # ---- connection -----------------------------------------------------------------------

    def use_map(self, fmap: FacilityMap) -> None:
        """The plant's map changed while the vehicle stood still."""
        self.map = fmap
        self.body.use_map(fmap)

    def online_message(self, now: float) -> Outgoing:
        return self._message("connection", {"connectionState": "ONLINE"}, now, retain=True)

    def last_will(self, now: float) -> Outgoing:
        return self._message("connection", {"connectionState": "CONNECTIONBROKEN"}, now, retain=True)

    def subscriptions(self) -> list[str]:
        return [self.layout.topic(self.key, "order"), self.layout.topic(self.key, "instantActions")]

    # ---- incoming -------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes, now: float) -> None:
        name = topic.rsplit("/", 1)[-1]
        try:
            message = parse_message(name, payload)
        except ValueError:
            return  # a real vehicle ignores what it cannot parse (it may report it; not required)
        if isinstance(message, Order):
            self._on_order(message)
        elif isinstance(message, InstantActions):
            for action in message.actions:
                self._on_instant(action, now)
        self._dirty = True

    def _supports(self, action_type: str) -> bool:
        return self.behaviour.supported is None or action_type in self.behaviour.supported

    def _on_order(self, order: Order) -> None:
        unknown = [a.action_type for n in order.nodes for a in n.actions if a.action_type not in KNOWN_ACTIONS]
        unknown += [a.action_type for e in order.edges for a in e.actions if a.action_type not in KNOWN_ACTIONS]
        if unknown:
            return self._reject(order, "validationError", f"unknown action type {unknown[0]}")
        refused = [a.action_type for n in order.nodes for a in n.actions if not self._supports(a.action_type)]
        if refused:
            return self._reject(order, "orderError", f"order action is not executable: {refused[0]} not supported")
        if not order.nodes:
            return self._reject(order, "validationError", "order without nodes")
        first = order.nodes[0]
        if order.order_id == self.order_id:
            if order.order_update_id < self.order_update_id:
                return self._reject(order, "orderUpdateError", "orderUpdateId older than the current one")
            if order.order_update_id == self.order_update_id:
                return None  # a repeat of what we have
            base_end = self._base_end()
            if base_end is None or (first.node_id, first.sequence_id) != base_end:
                return self._reject(order, "orderUpdateError", "update does not start at the last base node")
        else:
            if not self._done():
                return self._reject(order, "orderUpdateError", "a new order while the current one runs")
            pos = first.node_position
            target = self.map.node_by_id.get(first.node_id)
            x, y = (pos.x, pos.y) if pos is not None else ((target.x, target.y) if target else (math.inf, math.inf))
            allowed = pos.allowed_deviation_xy if pos and pos.allowed_deviation_xy else 0.5
            if math.hypot(x - self.body.x, y - self.body.y) > allowed:
                return self._reject(order, "noRouteError", f"first node {first.node_id} is not where the vehicle is")
            self._nodes, self._edges, self._queue = [], [], []
            self._actions = {k: r for k, r in self._actions.items() if r.node_seq is None}
            self.last_node_id, self.last_node_seq = first.node_id, first.sequence_id
        self.order_id, self.order_update_id = order.order_id, order.order_update_id
        self._errors = [e for e in self._errors if e["errorType"] == "none"]
        known = {seq for _, seq, released in self._nodes if released}
        # Replace the horizon, keep and extend the base.
        self._nodes = [n for n in self._nodes if n[2]]
        self._edges = [e for e in self._edges if e[2]]
        drive: list[str] = []
        for node in order.nodes:
            if node.released and node.sequence_id in known:
                continue
            self._nodes.append((node.node_id, node.sequence_id, node.released))
            for action in node.actions:
                self._actions[action.action_id] = _ActionRecord(action, node_seq=node.sequence_id)
            if node.released and node.sequence_id > self.last_node_seq:
                drive.append(node.node_id)
        for edge in order.edges:
            if not (edge.released and any(s == edge.sequence_id for _, s, _ in self._edges)):
                self._edges.append((edge.edge_id, edge.sequence_id, edge.released))
        if drive:
            self.body.drive(tuple(drive))
        self._start_node_actions(self.last_node_seq)
        return None

    def _on_instant(self, action: Action, now: float) -> None:
        record = _ActionRecord(action)
        self._actions[action.action_id] = record
        kind = action.action_type
        if kind not in KNOWN_ACTIONS or kind in ("pick", "drop") or not self._supports(kind):
            record.status, record.result = "FAILED", f"{kind} is not an instant action of this vehicle"
        elif kind == "cancelOrder":
            # Stop at the next node: drop everything released beyond it (sec. 6.8.2); the action
            # stays RUNNING until the vehicle stands still.
            keep = 1 if self.body.moving and not self.behaviour.stop_at_once else 0
            if self.behaviour.stop_at_once:
                self.body.halt()
                self.stops_on_lanes += self.body.on_lane
            else:
                self.body.cancel()
            for r in self._actions.values():
                if r.node_seq is not None and r.status in ("WAITING", "RUNNING"):
                    r.status, r.result = "FAILED", "order cancelled"
            if self._running is not None:
                self.body.stop_action()
                self._running = None
            self._queue = []
            self._nodes = [n for n in self._nodes if n[1] <= self.last_node_seq + (2 if keep else 0)]
            self._edges = [e for e in self._edges if e[1] <= self.last_node_seq + (1 if keep else 0)]
            record.status = "RUNNING"
            self._cancel = action.action_id
        elif kind == "startPause":
            self.body.paused = True
            record.status = "FINISHED"
        elif kind == "stopPause":
            self.body.paused = False
            record.status = "FINISHED"
        elif kind == "stateRequest":
            self._next_state = now  # answered by the next step
            record.status = "FINISHED"
        elif kind == "factsheetRequest":
            self._outbox.append(self._factsheet(now))
            record.status = "FINISHED"
        elif kind == "startCharging":
            charger = next((c for c in self.map.chargers if c.node == self.last_node_id), None)
            if charger is None or self.body.moving:
                record.status, record.result = "FAILED", "not standing at a charger"
            else:
                self.body.start_action(ActionKind.CHARGE, charger.id, 1.0)
                self._charging_action = action.action_id
                record.status = "FINISHED"
        elif kind == "stopCharging":
            if self._charging_action is not None:
                self.body.stop_action()
                self._charging_action = None
            record.status = "FINISHED"
        elif kind == "initPosition":
            params = {p.key: p.value for p in action.action_parameters or []}
            node = self.map.node_by_id.get(str(params.get("lastNodeId", "")))
            if node is None or self.body.moving:
                record.status, record.result = "FAILED", "unknown lastNodeId or vehicle moving"
            else:
                self.body.place_at(node.id)
                self.last_node_id, self.last_node_seq = node.id, 0
                self.order_id, self.order_update_id = "", 0
                self._nodes, self._edges = [], []
                record.status = "FINISHED"

    def publish_factsheet(self, now: float) -> None:
        """Its factsheet again, unasked (its software or configuration changed)."""
        self._outbox.append(self._factsheet(now))

    def restart(self, now: float) -> None:
        """Its software restarts while it stands at a node: the order it drove, its actions and
        its message counters are gone (what it carries stays on board); it comes online again
        and reports an empty orderId."""
        if self.body.on_lane:
            raise ValueError(f"{self.key.serial_number} restarts only standing at a node")
        self.body.path.clear()
        if self._running is not None:
            self.body.stop_action()
        self.order_id, self.order_update_id = "", 0
        self._nodes, self._edges, self._queue, self._actions = [], [], [], {}
        self._running = self._charging_action = self._cancel = None
        self._errors, self._headers = [], {}
        self.body.paused = False
        self._outbox.append(self.online_message(now))
        self._dirty = True

    # ---- time -----------------------------------------------------------------------------

    def step(self, dt: float, now: float) -> None:
        for event in self.body.step(dt):
            self._dirty = True
            if isinstance(event, NodeReached):
                seq = next(
                    (s for n, s, r in self._nodes if r and n == event.node and s > self.last_node_seq),
                    self.last_node_seq,
                )
                self.last_node_id, self.last_node_seq = event.node, seq
                self._start_node_actions(seq)
            elif isinstance(event, ActionFinished) and event.action is not ActionKind.CHARGE:
                if self._running is not None:
                    record = self._actions[self._running]
                    record.status = "FINISHED"
                    if record.action.action_type == "pick":
                        self.loads.append({"loadId": record.action.action_id, "loadType": "rack"})
                    elif self.loads:
                        self.loads.pop(0)  # the load the sensor sees go; which one it was is the controller's record
                    self._running = None
                self._start_node_actions(self.last_node_seq)
        if self._cancel is not None and not self.body.moving and not self.body.path:
            self._actions[self._cancel].status = "FINISHED"
            self._cancel = None
            self._nodes = [n for n in self._nodes if n[1] <= self.last_node_seq]
            self._edges = [e for e in self._edges if e[1] < self.last_node_seq]
            self._dirty = True
        if self._dirty or now >= self._next_state:
            self._outbox.append(self._state(now))
            self._next_state = now + self.state_interval_s
            self._dirty = False

    def current_state(self, now: float) -> Outgoing:
        """A state message as of now (what a stateRequest would bring), outside the normal cadence."""
        return self._state(now)

    def take_outbox(self) -> list[Outgoing]:
        out, self._outbox = self._outbox, []
        return out

    # ---- helpers --------------------------------------------------------------------------

    def _start_node_actions(self, seq: int) -> None:
        if self._running is not None:
            return
        for action_id, record in self._actions.items():
            if record.node_seq == seq and record.status == "WAITING":
                params = {p.key: p.value for p in record.action.action_parameters or []}
                station = str(params.get("stationId", ""))
                if station not in self.map.station_by_id:
                    record.status, record.result = "FAILED", f"unknown station '{station}'"
                    continue
                kind = ActionKind.PICK if record.action.action_type == "pick" else ActionKind.DROP
                self.body.start_action(kind, station, None)
                record.status = "RUNNING"
                self._running = action_id
                return

    def _base_end(self) -> tuple[str, int] | None:
        base = [(n, s) for n, s, r in self._nodes if r]
        return base[-1] if base else None

    def _done(self) -> bool:
        """No base left to drive and no node action waiting or running."""
        base_end = self._base_end()
        driving_left = base_end is not None and base_end[1] > self.last_node_seq
        actions_left = any(
            r.node_seq is not None and r.status in ("WAITING", "RUNNING") for r in self._actions.values()
        )
        return not driving_left and not actions_left and not self.body.moving

    def _reject(self, order: Order, error_type: str, description: str) -> None:
        self._errors.append(
            {
                "errorType": error_type,
                "errorLevel": "WARNING",
                "errorDescription": description,
                "errorReferences": [
                    {"referenceKey": "orderId", "referenceValue": order.order_id},
                    {"referenceKey": "orderUpdateId", "referenceValue": str(order.order_update_id)},
                ],
            }
        )

    def _state(self, now: float) -> Outgoing:
        b = self.body
        body = {
            "orderId": self.order_id,
            "orderUpdateId": self.order_update_id,
            "lastNodeId": self.last_node_id,
            "lastNodeSequenceId": self.last_node_seq,
            "nodeStates": [
                {"nodeId": n, "sequenceId": s, "released": r} for n, s, r in self._nodes if s > self.last_node_seq
            ],
            "edgeStates": [
                {"edgeId": e, "sequenceId": s, "released": r} for e, s, r in self._edges if s > self.last_node_seq
            ],
            "driving": b.moving and not b.paused,
            "paused": b.paused,
            "actionStates": [
                {"actionId": k, "actionType": r.action.action_type, "actionStatus": r.status}
                | ({"resultDescription": r.result} if r.result else {})
                for k, r in self._actions.items()
            ],
            "batteryState": {"batteryCharge": round(b.battery * 100, 3), "charging": self._charging_action is not None},
            "operatingMode": self.operating_mode,
            "errors": self._errors + self.hardware_errors,
            "loads": self.loads,
            "safetyState": {"eStop": "NONE", "fieldViolation": False},
            "agvPosition": {
                "x": round(b.x, 4),
                "y": round(b.y, 4),
                "theta": round(b.heading, 4),
                "mapId": self.map.name,
                "positionInitialized": True,
            },
            "velocity": {"vx": round(b.speed, 4)},
        }
        return self._message("state", body, now)

    def _factsheet(self, now: float) -> Outgoing:
        t = self.body.type
        body = {
            "typeSpecification": {
                "seriesName": t.id,
                "agvKinematic": "DIFF",
                "agvClass": "CARRIER",
                "maxLoadMass": 1000,
                "localizationTypes": ["NATURAL"],
                "navigationTypes": ["PHYSICAL_LINDE_GUIDED"],
            },
            "physicalParameters": {
                "speedMin": 0.0,
                "speedMax": t.max_speed,
                "accelerationMax": t.acceleration,
                "decelerationMax": t.acceleration,
                "heightMin": 0.3,
                "heightMax": 0.5,
                "width": self.behaviour.size[0] if self.behaviour.size else t.width,
                "length": self.behaviour.size[1] if self.behaviour.size else t.length,
            },
        }
        supported = sorted(self.behaviour.supported if self.behaviour.supported is not None else KNOWN_ACTIONS)
        body["protocolFeatures"] = {
            "optionalParameters": [],
            "agvActions": [
                {"actionType": a, "actionScopes": ["NODE"] if a in ("pick", "drop") else ["INSTANT"]} for a in supported
            ],
        }
        limits: dict[str, Any] = {}
        if self.behaviour.max_order_nodes is not None:
            limits["maxArrayLens"] = {"order.nodes": self.behaviour.max_order_nodes}
        if self.behaviour.id_len is not None:
            limits["maxStringLens"] = {"idLen": self.behaviour.id_len}
        if limits:
            body["protocolLimits"] = limits
        return self._message("factsheet", body, now, retain=True)

    def _message(self, topic: str, body: dict[str, Any], now: float, retain: bool = False) -> Outgoing:
        self._headers[topic] = self._headers.get(topic, -1) + 1
        header = {
            "headerId": self._headers[topic],
            "timestamp": timestamp(now),
            "version": self.version,
            "manufacturer": self.key.manufacturer,
            "serialNumber": self.key.serial_number,
        }
        payload = json.dumps(header | body, separators=(",", ":")).encode()
        return Outgoing(self.layout.topic(self.key, topic), payload, QOS[topic], retain)
