"""One vehicle's VDA 5050 protocol state on the controller side: pure, no I/O, time passed in.

`VehicleLink` turns the core's commands into messages and the vehicle's messages into core
events:
- `DriveNodes` becomes an order (sec. 6.6): a new order starts at the node where the vehicle
  stands; while it drives, each release is an order update with the same orderId and the next
  orderUpdateId whose first node is the stitching node, the last node of the previous base
  (sec. 6.6.2). Nodes take even sequenceIds, edges odd ones. Released nodes form the base, the
  planned rest of the route the horizon (released false).
- `StartAction` for pick and drop becomes a new one-node order at the vehicle's node carrying the
  action (sec. 6.6.3: actions on nodes); for charging, the instant action startCharging
  (sec. 6.8.2), and stopCharging once the battery reaches the requested charge.
- A state (sec. 6.10) becomes `NodeReached` for each base node passed since the last report
  (lastNodeId/lastNodeSequenceId of the current order only), `ActionFinished` when an action of
  ours reaches FINISHED or FAILED (each once), and a `StateReport` with pose and battery.
- Errors that reject an order (sec. 6.10.6: orderError, orderUpdateError, noRouteError,
  validationError) referencing our orderId become `DriveRejected`.
headerId counts per topic (sec. 6.2).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

from fleet.events import (
    ActionFinished,
    ActionKind,
    BaseRequested,
    CommandRefused,
    DriveCancelled,
    DriveRejected,
    Event,
    LoadReported,
    NodeReached,
    OrderLost,
    StateReport,
    VehicleMoved,
    VehicleStatus,
)
from fleet.vda5050.instants import InstantTracker
from fleet.vda5050.messages import (
    Action,
    ActionParameter,
    ActionStatus,
    BlockingType,
    Connection,
    ConnectionState,
    InstantActions,
    OperatingMode,
    Order,
    State,
    VehicleError,
    Visualization,
    parse_timestamp,
    timestamp,
)
from fleet.vda5050.order_parts import ON_NODE_M, instant_action_id, map_edge, map_node, node_action_id, order_id
from fleet.vda5050.profiles import VehicleProfile
from fleet.vda5050.standing import node_at, off_last_node, reach
from fleet.vda5050.topics import VehicleKey
from maps import FacilityMap

log = logging.getLogger(__name__)

RESEND_AFTER_S = 3.0
REJECTING_ERRORS = frozenset({"orderError", "orderUpdateError", "noRouteError", "validationError"})
_NODE_ACTION = {ActionKind.PICK: "pick", ActionKind.DROP: "drop"}


@dataclass
class _PendingAction:
    kind: ActionKind
    reported: bool = False


@dataclass
class VehicleLink:
    """Protocol state for one vehicle. Single writer: the controller's loop."""

    key: VehicleKey
    fmap: FacilityMap
    node: str  # where the vehicle stands or last stood: the start of the next order
    version: str = "2.0.0"
    connection: ConnectionState | None = None
    order_id: str | None = None
    order_update_id: int = 0
    _order_count: int = 0
    _base: list[tuple[str, int]] = field(default_factory=list)  # (nodeId, sequenceId) released so far
    _reported_seq: int = -1  # highest base sequence id reported to the core
    _headers: dict[str, int] = field(default_factory=dict)
    _actions: dict[str, _PendingAction] = field(default_factory=dict)
    _charge_until: float | None = None
    _charging_seen: bool = False  # the vehicle reported charging since startCharging (the charge is real)
    _charge_stopped: bool = False  # stopCharging sent: the charge ends when the vehicle reports it ended
    _rejected: set[str] = field(default_factory=set)
    _superseded_seen: set[tuple[str, str]] = field(default_factory=set)
    instants: InstantTracker = field(default_factory=InstantTracker)  # instant actions until answered
    _cancel_id: str | None = None
    _taken: bool = False  # the vehicle reported our current order: from then on, not reporting it means lost
    # Stopped between nodes: the next order's base starts with these (lastNodeId, the node ahead),
    # the first node allowing this deviation from its position.
    _resume: tuple[list[tuple[str, int]], float | None] | None = None
    _sent: list[Order] = field(default_factory=list)  # messages of the current order, by update id
    _last_order_sent: float = -math.inf
    _status: tuple[bool, str, tuple[str, ...], str | None] = (True, "AUTOMATIC", (), None)
    _loaded: bool | None = None  # as the vehicle last reported; None until it reports loads
    _base_requested: bool = False  # its last state asked for a new base
    last_state: State | None = None
    pinned_version: bool = False  # configured per vehicle: never taken from its messages
    pose: tuple[float, float, float] | None = None
    order_prefix: str = ""  # tells this controller run's orderIds (and instant actionIds) from an earlier run's
    header_base: int = 0  # headerIds start here: a later run (or a standby taking over) starts higher
    profile: VehicleProfile | None = None  # its vendor's reading of VDA 5050 (map id, action parameters)
    max_nodes: int | None = None  # the most nodes an order may have (its factsheet's protocolLimits)

    @property
    def vehicle_id(self) -> str:
        return self.key.vehicle_id

    @property
    def map_id(self) -> str:
        """The mapId the vehicle uses for the controller's map (its profile may name another)."""
        return self.profile.map_id(self.fmap.name) if self.profile else self.fmap.name

    def header(self, topic: str, now: float) -> dict[str, object]:
        self._headers[topic] = self._headers.get(topic, self.header_base - 1) + 1
        return {
            "header_id": self._headers[topic],
            "timestamp": timestamp(now),
            "version": self.version,
            "manufacturer": self.key.manufacturer,
            "serial_number": self.key.serial_number,
        }

    # ---- commands to messages -------------------------------------------------------------

    def drive(self, nodes: tuple[str, ...], horizon: list[str], now: float) -> Order:
        """The order (or order update) releasing `nodes` after the current base end."""
        deviation: float | None = None
        if self.order_id is None or not self._base:
            start, deviation = self._resume or ([(self.node, 0)], None)
            self._resume = None
            self._new_order(start)
        else:
            self.order_update_id += 1
        head = self._base[:-1] if self.order_update_id == 0 else []  # a new order off a node: its first lane
        stitch_id, stitch_seq = self._base[-1]
        released = [*(n for n, _ in head), stitch_id, *nodes]
        first_seq = head[0][1] if head else stitch_seq
        seq = stitch_seq
        for nid in nodes:
            seq += 2
            self._base.append((nid, seq))
        order_nodes = [
            map_node(self.fmap, self.map_id, nid, first_seq + 2 * k, True, deviation=deviation if k == 0 else None)
            for k, nid in enumerate(released)
        ]
        order_edges = [
            map_edge(self.fmap, a, b, first_seq + 2 * k + 1, True)
            for k, (a, b) in enumerate(itertools.pairwise(released))
        ]
        last = released[-1]
        if self.max_nodes is not None:  # the factsheet's limit: the horizon is cut, never the base
            horizon = horizon[: max(0, self.max_nodes - len(released))]
        for k, nid in enumerate(horizon, start=1):
            order_nodes.append(map_node(self.fmap, self.map_id, nid, seq + 2 * k, False))
            order_edges.append(map_edge(self.fmap, last, nid, seq + 2 * k - 1, False))
            last = nid
        return self._remember(
            Order(
                **self.header("order", now),  # type: ignore[arg-type]
                order_id=self.order_id or "",
                order_update_id=self.order_update_id,
                nodes=order_nodes,
                edges=order_edges,
            ),
            now,
        )

    def node_action(self, kind: ActionKind, place_id: str, now: float) -> Order:
        """A one-node order at the vehicle's node carrying a pick or drop action."""
        here = self._base[-1][0] if self._base else self.node
        self._new_order([(here, 0)])
        action_id = node_action_id(self.order_id or "", _NODE_ACTION[kind])
        self._actions[action_id] = _PendingAction(kind)
        action = Action(
            action_type=_NODE_ACTION[kind],
            action_id=action_id,
            blocking_type=BlockingType.HARD,
            action_parameters=[
                ActionParameter(key=k, value=v)
                for k, v in self._action_parameters(_NODE_ACTION[kind], place_id).items()
            ],
        )
        node = map_node(self.fmap, self.map_id, here, 0, True, [action])
        return self._remember(
            Order(
                **self.header("order", now),  # type: ignore[arg-type]
                order_id=self.order_id or "",
                order_update_id=0,
                nodes=[node],
                edges=[],
            ),
            now,
        )

    def _action_parameters(self, action: str, place_id: str) -> dict[str, object]:
        """stationId, and what the vehicle's profile adds for this action at this station."""
        extra = self.profile.parameters(action, place_id) if self.profile else {}
        return {"stationId": place_id, **extra}

    def instant(self, action_type: str, now: float, parameters: dict[str, object] | None = None) -> InstantActions:
        """An instantActions message with exactly one action (interoperability: one per message)."""
        count = self._headers.get("instantActions", self.header_base - 1) + 1
        action = Action(
            action_type=action_type,
            action_id=instant_action_id(self.vehicle_id, self.order_prefix, count),
            blocking_type=BlockingType.NONE
            if action_type in ("stateRequest", "factsheetRequest")
            else BlockingType.HARD,
            action_parameters=[{"key": k, "value": v} for k, v in (parameters or {}).items()] or None,  # type: ignore[misc]
        )
        message = InstantActions(**self.header("instantActions", now), actions=[action])  # type: ignore[arg-type]
        self.instants.sent(message, now)
        return message

    @property
    def instant_status(self) -> dict[str, str]:
        """Instant actionId -> the status the vehicle last reported (SENT until it does)."""
        return self.instants.status

    def cancel(self, now: float) -> InstantActions:
        """cancelOrder (sec. 6.8.2); the vehicle stops at its next node and finishes the action then."""
        message = self.instant("cancelOrder", now)
        self._cancel_id = message.actions[0].action_id
        return message

    def init_position(self, node_id: str, now: float) -> InstantActions:
        """initPosition (sec. 6.8.2) with x, y, theta, mapId, lastNodeId; the next order starts there."""
        n = self.fmap.node_by_id[node_id]
        self._base, self.order_id, self.node, self._sent, self._resume = [], None, node_id, [], None
        params = {"x": n.x, "y": n.y, "theta": 0.0, "mapId": self.map_id, "lastNodeId": node_id}
        return self.instant("initPosition", now, params)

    def stop_charging(self, now: float) -> InstantActions | None:
        """stopCharging before the requested charge (an order needs the vehicle); the charge is
        reported finished with the vehicle's next state. None if no charge of ours runs."""
        if self._charge_until is None:
            return None
        self._charge_until = None
        self._charge_stopped = True
        return self.instant("stopCharging", now)

    def start_charging(self, until: float, now: float) -> InstantActions:
        self._charge_until, self._charging_seen = until, False
        message = self.instant("startCharging", now)
        return message

    def tick(self, now: float) -> list[Event]:
        """Instant actions the vehicle has not answered in time, given up on (`CommandRefused`)."""
        return self._refused(self.instants.overdue(now))

    def _refused(self, refused: list[tuple[str, str, str]]) -> list[Event]:
        """Undo what the controller expected of refused instant actions; tell the core."""
        events: list[Event] = []
        for action_id, action_type, reason in refused:
            if action_id == self._cancel_id:
                self._cancel_id = None
            if action_type == "startCharging":
                self._charge_until = None
            log.warning("%s refused %s (%s): %s", self.vehicle_id, action_type, action_id, reason)
            events.append(CommandRefused(self.vehicle_id, action_type, reason))
        return events

    # ---- messages to events ---------------------------------------------------------------

    def on_connection(self, message: Connection) -> ConnectionState:
        self.connection = message.connection_state
        if not self.pinned_version:
            self.version = message.version or self.version
        return self.connection

    def on_visualization(self, message: Visualization) -> list[Event]:
        """Vehicles that put their position only on visualization (sec. 6.13) still move on the map."""
        if message.agv_position is None:
            return []
        p = message.agv_position
        self.pose = (p.x, p.y, p.theta)
        battery = self.last_state.battery_state.battery_charge / 100.0 if self.last_state else 1.0
        return [StateReport(self.vehicle_id, p.x, p.y, p.theta, min(1.0, max(0.0, battery)))]

    def on_state(self, state: State, now: float) -> tuple[list[Event], list[InstantActions]]:
        """Core events from a state, and instant actions the link must send in answer."""
        self.last_state = state
        if not self.pinned_version:
            self.version = state.version or self.version
        events: list[Event] = []
        replies: list[InstantActions] = []
        if self.order_id is not None and state.order_id == self.order_id:
            self._taken = True
        elif self.order_id is not None and self._taken:
            events.append(self._lost(state))
        if state.order_id == self.order_id:
            for nid, seq in self._base:
                if self._reported_seq < seq <= state.last_node_sequence_id and seq > 0:
                    events.append(NodeReached(self.vehicle_id, nid))
                    self._reported_seq = seq
                    self.node = nid
        events.extend(self._refused(self.instants.on_state(state)))
        for action_state in state.action_states:
            pending = self._actions.get(action_state.action_id)
            if pending is None or pending.reported:
                continue
            if action_state.action_status in (ActionStatus.FINISHED, ActionStatus.FAILED):
                pending.reported = True
                ok = action_state.action_status is ActionStatus.FINISHED
                events.append(ActionFinished(self.vehicle_id, pending.kind, ok, action_state.result_description))
        for error in state.errors:
            if error.error_type in REJECTING_ERRORS and self.order_id is not None:
                ref = error.reference("orderId")
                if ref == self.order_id and self._superseded(error, state):
                    continue
                if ref == self.order_id and ref not in self._rejected:
                    self._rejected.add(ref)
                    reason = error.error_description or error.error_type
                    events.append(DriveRejected(self.vehicle_id, f"{error.error_type}: {reason}"))
        if self._cancel_id is not None and self.instant_status.get(self._cancel_id) in ("FINISHED", "FAILED"):
            # Whatever the outcome, the vehicle now stands at lastNodeId and holds no order of ours:
            # the next drive starts a new order there.
            self._cancel_id = None
            ahead = self._stopped_short(state)
            self._base, self.order_id, self._sent = [], None, []
            if state.last_node_id in self.fmap.node_by_id:
                self.node = state.last_node_id
            events.append(DriveCancelled(self.vehicle_id, self.node, ahead))
        status = (
            state.operating_mode in (OperatingMode.AUTOMATIC, OperatingMode.SEMIAUTOMATIC),
            state.operating_mode.value,
            tuple(sorted(e.text() for e in state.errors)),
            state.safety_state.stop_cause(),
        )
        if status != self._status:
            self._status = status
            events.append(VehicleStatus(self.vehicle_id, *status))
        if state.new_base_request and not self._base_requested:
            events.append(BaseRequested(self.vehicle_id))
        self._base_requested = bool(state.new_base_request)
        if state.loads is not None:  # optional: vehicles without load sensing leave it out
            loaded = len(state.loads) > 0
            if loaded != self._loaded:
                self._loaded = loaded
                events.append(LoadReported(self.vehicle_id, loaded))
        battery = state.battery_state.battery_charge / 100.0
        charging = bool(state.battery_state.charging)  # the vehicle is the truth of whether it charges
        if self._charge_stopped and not charging:
            self._charge_stopped = False
            events.append(ActionFinished(self.vehicle_id, ActionKind.CHARGE))
        if self._charge_until is not None and charging:
            self._charging_seen = True
        if self._charge_until is not None and self._charging_seen and battery >= self._charge_until:
            self._charge_until = None
            self._charge_stopped = True
            replies.append(self.instant("stopCharging", now))
        if (moved := self._moved(state)) is not None:
            events.append(moved)
        pos = state.agv_position
        x, y, theta = (pos.x, pos.y, pos.theta) if pos is not None else (self.pose or self._node_xy(self.node))
        events.append(StateReport(self.vehicle_id, x, y, theta, min(1.0, max(0.0, battery))))
        return events, replies

    # ---- helpers -------------------------------------------------------------------------

    def _superseded(self, error: VehicleError, state: State) -> bool:
        """The vehicle refused a copy of an update older than one it already drives: a resend
        that crossed the original in flight (the vehicle was slow to report, not deaf). It
        keeps the newer update, so nothing is lost and nothing is to be done."""
        refused = error.reference("orderUpdateId")
        if refused is None or not refused.isdigit() or state.order_id != self.order_id:
            return False
        if int(refused) >= state.order_update_id:
            return False
        if (self.order_id, refused) not in self._superseded_seen:
            self._superseded_seen.add((self.order_id, refused))
            log.info(
                "%s refused a resent copy of update %s of %s; it drives update %d already",
                self.vehicle_id,
                refused,
                self.order_id,
                state.order_update_id,
            )
        return True

    def _stopped_short(self, state: State) -> tuple[str, ...]:
        """After a cancel: the base node the vehicle stands short of, when it stopped on the lane
        past its lastNodeId (VDA 5050 lets it stop at once). The next order then starts at
        lastNodeId with a deviation that takes in where it stands, and drives on to that node
        first: the lane it stands on (`_resume`)."""
        off = off_last_node(self.fmap, state)
        nxt = [(n, q) for n, q in self._base if q > state.last_node_sequence_id]
        last = self.fmap.node_by_id.get(state.last_node_id)
        if last is None or off <= reach(last) or not nxt:
            return ()
        self._resume = ([(state.last_node_id, 0), (nxt[0][0], 2)], off + ON_NODE_M)
        return (nxt[0][0],)

    def _lost(self, state: State) -> OrderLost:
        """The vehicle took our order, and now reports none or another (it restarted): the order
        is gone, not merely a message. The next drive starts a new order where it stands."""
        log.warning("%s lost order %s (reports '%s')", self.vehicle_id, self.order_id, state.order_id)
        self._base, self.order_id, self._sent, self._taken, self._cancel_id = [], None, [], False, None
        self._resume = None
        self.node = node_at(self.fmap, state) or self.node
        return OrderLost(self.vehicle_id, self.node)

    def _moved(self, state: State) -> VehicleMoved | None:
        """A vehicle holding nothing of ours (no order, or ours all driven) that stands still on
        another node than ours was moved (by hand, in manual mode): it is where it reports."""
        done = self.order_id is None or (
            state.order_id == self.order_id and self._base and self._reported_seq >= self._base[-1][1]
        )
        here = node_at(self.fmap, state) if done and not state.driving and self._cancel_id is None else None
        if here is None or here == self.node or (self._resume and here in (n for n, _ in self._resume[0])):
            return None  # where we have it (stopped short on a lane: within reach of either end)
        log.warning("%s reports standing at %s, not %s: re-placed", self.vehicle_id, here, self.node)
        self.node = here
        if self.order_id is not None:
            self._base = []  # the next drive starts a new order where it stands
        return VehicleMoved(self.vehicle_id, here)

    def missed_orders(self, state: State, now: float) -> list[Order]:
        """Order messages of the current order the vehicle shows it never got (its state names an
        older orderUpdateId, or still the previous order), sent again in order with new headers.
        A broker that dies takes messages with it; each update stitches onto the one before, so
        they go again from the first one missing. Waits `RESEND_AFTER_S` after the last send, so
        messages merely in flight are not repeated; a vehicle ignores an update it already has."""
        if self.order_id is None or self.order_id in self._rejected or not self._sent:
            return []
        # Only a state the vehicle made well after our last order message left for the broker
        # shows it missed it: states read late (our loop was busy) or messages still queued here
        # would otherwise look like losses, and a resent older update is one the vehicle must
        # refuse (orderUpdateError), once it has the newer one.
        made = parse_timestamp(state.timestamp)
        if (made if made is not None else now) - self._last_order_sent < RESEND_AFTER_S:
            return []
        if state.order_id == self.order_id:
            missing = [o for o in self._sent if o.order_update_id > state.order_update_id]
        else:
            missing = list(self._sent)
        resent = [o.model_copy(update=self.header("order", now)) for o in missing]
        if resent:
            self._last_order_sent = now
        return resent

    def published(self, topic: str, now: float) -> None:
        """An order message of ours was handed to the broker just now (it may have waited in
        the client's queue since it was made)."""
        if topic.endswith("/order"):
            self._last_order_sent = max(self._last_order_sent, now)

    def _remember(self, order: Order, now: float) -> Order:
        if order.order_update_id == 0:
            self._sent = []
        self._sent.append(order)
        self._last_order_sent = now
        return order

    def adopt(self, state: State) -> list[str]:
        """Take over the order a vehicle reports on first sight (one an earlier run of the
        controller gave it): the base nodes it still has to drive, in order. Its progress then
        advances the core like our own orders', and the next release is an update stitched onto
        that base, as VDA 5050 requires of a base already released."""
        ahead = sorted((n for n in state.node_states if n.released), key=lambda n: n.sequence_id)
        if not state.order_id or not ahead or state.last_node_id not in self.fmap.node_by_id:
            return []
        if any(n.node_id not in self.fmap.node_by_id for n in ahead):
            return []
        self.order_id, self.order_update_id, self._taken = state.order_id, state.order_update_id, True
        self._base = [(state.last_node_id, state.last_node_sequence_id), *((n.node_id, n.sequence_id) for n in ahead)]
        self._reported_seq = state.last_node_sequence_id
        self.node = state.last_node_id
        return [n.node_id for n in ahead]

    def _new_order(self, base: list[tuple[str, int]]) -> None:
        self._order_count += 1
        self.order_id = order_id(self.vehicle_id, self.order_prefix, self._order_count)
        self.order_update_id = 0
        self._taken = False
        self._base = list(base)
        self._reported_seq = 0
        self.node = base[0][0]

    def _node_xy(self, node_id: str) -> tuple[float, float, float]:
        n = self.fmap.node_by_id[node_id]
        return n.x, n.y, 0.0
