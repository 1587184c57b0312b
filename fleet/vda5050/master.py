"""VDA 5050 master control: every vehicle's link, incoming messages to core events, core commands
to outgoing messages. Transport-free: the shell feeds `on_message` and sends what `take_outbox`
returns (over MQTT or an in-process bus).

Incoming messages that are not valid JSON, break the message model, exceed the size limit or name
an unknown topic are logged with vehicle, topic and the first error, counted in `dropped` by
reason, and dropped: they never reach the core. So are messages that do not come from the
vehicle they name: a serial number not in the fleet (`unknown_vehicle`: listed in `pending` for
an operator to admit, unless `admit_unknown`), another manufacturer under a known serial number
(`impersonation`), a header naming another vehicle than the topic (`identity`), a state whose
headerId does not count up (`stale_header`), more messages a second than a vehicle sends
(`flood`). Only the broker's ACL can stop a client that holds a vehicle's own credentials.

Concurrency contract: single writer, the same loop that runs the controller core.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from fleet.events import (
    AbilitiesReported,
    ActionKind,
    CancelDrive,
    Command,
    ConnectionChanged,
    DriveNodes,
    Event,
    InitPosition,
    PauseVehicle,
    StartAction,
    StopCharging,
)
from fleet.metrics import Sample
from fleet.model import PendingVehicle
from fleet.vda5050.limits import NEEDED_ACTIONS, sent_ids, size_of, unmet_string_limits
from fleet.vda5050.link import VehicleLink
from fleet.vda5050.messages import (
    Connection,
    ConnectionState,
    Factsheet,
    State,
    Visualization,
    parse_message,
    to_wire,
)
from fleet.vda5050.profiles import ProfileFile, Quirk, VehicleProfile
from fleet.vda5050.topics import TopicLayout, VehicleKey
from maps import FacilityMap

log = logging.getLogger(__name__)

# Sec. 6.3 recommends QoS 0 for state and visualization, 1 for order, instantActions, connection
# and factsheet.
QOS = {"order": 1, "instantActions": 1, "state": 0, "visualization": 0, "connection": 1, "factsheet": 1}


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool = False
    # Messages with the same key say the same thing (an order update sent again): a transport
    # that still holds one unsent need not queue the next.
    key: str | None = None


@dataclass(frozen=True, slots=True)
class VehicleAppeared:
    """A vehicle reported for the first time, standing at `node` (nearest to its position)."""

    vehicle_id: str
    node: str
    battery: float
    type_id: str | None = None
    ahead: tuple[str, ...] = ()  # base nodes it still drives, released by an earlier controller run


@dataclass(frozen=True, slots=True)
class VehicleSettings:
    """What the plant configures for one vehicle ahead of its first message."""

    version: str | None = None  # the exact header version it accepts ("2.0.0" vs "2.1.0")
    type_id: str | None = None  # its vehicle type on the map; default: the map's first
    manufacturer: str | None = None  # its manufacturer in topic and header; None: taken at first sight
    profile: VehicleProfile | None = None  # how its vendor reads VDA 5050 (fleet.vda5050.profiles)


PENDING_MAX = 100  # vehicles listed as pending at once (the oldest are forgotten first)
FLOOD_RATE = 20.0  # messages a second a vehicle may send on one topic, sustained
FLOOD_BURST = 50.0  # and in a burst
LOG_EVERY = 1000  # a dropped message of a reason and vehicle logged once, then every this many
RESTART_HEADER_BELOW = 5  # a state headerId this low after higher ones: the vehicle restarted


@dataclass
class MasterConfig:
    layout: TopicLayout = field(default_factory=TopicLayout)
    max_payload_bytes: int = 256 * 1024
    default_version: str = "2.0.0"
    vehicles: dict[str, VehicleSettings] = field(default_factory=dict)  # pre-registered, by serial number
    # Vehicles not configured join when they first report (a simulation, a lab); a plant sets
    # False: they are listed as pending until an operator admits them.
    admit_unknown: bool = True
    # Put in every orderId so that a restarted controller never reuses an id a vehicle has seen
    # (the server shell sets one per run; simulations leave it empty to stay reproducible).
    order_prefix: str = ""
    # Where this run's headerIds start (sec. 6.2 counts them per topic): the server shell starts
    # each run above the one before, so a vehicle never sees a headerId twice from its master.
    header_base: int = 0


def _with_quirks(profile: VehicleProfile, topic: str, body: dict[str, Any]) -> dict[str, Any]:
    """A message as a vendor with these quirks reads it: the standard keys stay, the vendor's
    spelling is added beside them (the official schemas allow extra keys there)."""
    if topic == "instantActions" and profile.has(Quirk.INSTANT_ACTIONS_KEY):
        body = {**body, "instantActions": body["actions"]}
    if topic == "order" and profile.has(Quirk.DEVIATION_XY_KEY):
        nodes = []
        for node in body["nodes"]:
            pos = node.get("nodePosition")
            if pos is not None and "allowedDeviationXY" in pos:
                node = {**node, "nodePosition": {**pos, "allowedDeviationXy": pos["allowedDeviationXY"]}}
            nodes.append(node)
        body = {**body, "nodes": nodes}
    return body


def fleet_from_profiles(profiles: ProfileFile, config: MasterConfig) -> MasterConfig:
    """`config` with the fleet of a profile file: each vehicle with its profile and map type,
    its manufacturer fixed, and the file's interface name."""
    config.layout = TopicLayout(profiles.interface_name, config.layout.major_version)
    for v in profiles.vehicles:
        config.vehicles[v.serial_number] = VehicleSettings(
            type_id=v.vehicle_type, manufacturer=v.manufacturer, profile=profiles.profiles[v.profile]
        )
    return config


class MasterControl:
    def __init__(self, fmap: FacilityMap, config: MasterConfig | None = None) -> None:
        self.map = fmap
        self.config = config or MasterConfig()
        self.links: dict[str, VehicleLink] = {}
        self._unplaced: dict[str, VehicleLink] = {}  # links of vehicles online but not yet placed
        self.dropped: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.factsheets: dict[str, Factsheet] = {}
        self.pending: dict[str, PendingVehicle] = {}  # by serial number, oldest first
        self._identity: dict[str, str] = {}  # serial number -> manufacturer, as first admitted
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (serial, topic) -> (tokens, at)
        self._last_header: dict[tuple[str, str], int] = {}  # (serial, topic) -> newest headerId taken
        self._drops_by: dict[tuple[str, str], int] = {}  # (reason, vehicle) -> dropped (for the log; bounded)
        self._outbox: list[Outgoing] = []

    # ---- incoming -------------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Event | VehicleAppeared]:
        """Core events (and first sightings) from one MQTT message; bad messages are dropped."""
        parsed = self.config.layout.parse(topic)
        if parsed is None:
            return self._drop("topic", topic, None, "not a VDA 5050 vehicle topic of this layout")
        key, name = parsed
        if len(payload) > self.config.max_payload_bytes:
            return self._drop("too_large", topic, key, f"{len(payload)} bytes")
        if (refused := self._refuse(key, topic, now)) is not None:
            return self._drop(refused[0], topic, key, refused[1])
        try:
            message = parse_message(name, payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<root>"
            return self._drop("invalid", topic, key, f"{where}: {first['msg']}")
        except (ValueError, UnicodeDecodeError) as exc:
            return self._drop("invalid", topic, key, str(exc))
        if getattr(message, "serial_number", key.serial_number) not in (None, key.serial_number):
            return self._drop("identity", topic, key, "serialNumber does not match the topic")
        if getattr(message, "manufacturer", key.manufacturer) not in (None, key.manufacturer):
            return self._drop("identity", topic, key, "manufacturer does not match the topic")
        if isinstance(message, State) and not self._newer(key, name, message.header_id, now):
            return self._drop("stale_header", topic, key, f"headerId {message.header_id} not newer than the last")
        self.received[name] += 1
        if isinstance(message, Connection):
            return self._on_connection(key, message, now)
        if isinstance(message, State):
            return self._on_state(key, message, now)
        if isinstance(message, Visualization):
            link = self.links.get(key.vehicle_id)
            return list(link.on_visualization(message)) if link is not None else []
        if isinstance(message, Factsheet):
            self.factsheets[key.vehicle_id] = message
            return self._on_factsheet(key, message)
        return self._drop("unexpected", topic, key, f"controllers do not receive '{name}'")

    def _on_factsheet(self, key: VehicleKey, factsheet: Factsheet) -> list[Event | VehicleAppeared]:
        """Honour what a factsheet states (sec. 6.15): the actions the controller needs that it
        does not list, the most nodes an order may have, the string lengths it reads and its
        size (`fleet/vda5050/limits.py`). A factsheet that says nothing of them (a header only,
        as some vendors send) limits nothing."""
        link = self.links.get(key.vehicle_id) or self._unplaced.get(key.vehicle_id)
        limits = factsheet.protocol_limits or {}
        lens = limits.get("maxArrayLens") if isinstance(limits, dict) else None
        # An order of n nodes has n - 1 edges: the tighter of the two limits bounds its nodes.
        bounds = [
            bound + extra
            for name, extra in (("order.nodes", 0), ("order.edges", 1))
            if isinstance(lens, dict) and isinstance(bound := lens.get(name), int) and bound + extra >= 2
        ]
        if link is not None:
            link.max_nodes = min(bounds) if bounds else None
        unfit: tuple[str, ...] = ()
        if link is not None:
            ids = sent_ids(self.map, link.map_id, link.vehicle_id, link.order_prefix)
            unfit = unmet_string_limits(factsheet, ids, link.profile)
        features = factsheet.protocol_features or {}
        listed = features.get("agvActions") if isinstance(features, dict) else None
        lacks: tuple[str, ...] = ()
        if isinstance(listed, list):
            have = {a.get("actionType") for a in listed if isinstance(a, dict)}
            lacks = tuple(sorted(NEEDED_ACTIONS - have))
        return [AbilitiesReported(key.vehicle_id, lacks, unfit, size_of(factsheet))]

    def _refuse(self, key: VehicleKey, topic: str, now: float) -> tuple[str, str] | None:
        """(reason, detail) when a message must not reach a link: a vehicle not in the fleet
        (listed as pending), another manufacturer's under a known serial number, or one over
        its rate on the topic. None: it may be parsed."""
        serial = key.serial_number
        settings = self.config.vehicles.get(serial)
        if settings is None and not self.config.admit_unknown:
            seen = self.pending.pop(serial, None)
            if seen is None:
                seen = PendingVehicle(key.manufacturer, serial, now, now, 0)
                while len(self.pending) >= PENDING_MAX:
                    self.pending.pop(next(iter(self.pending)))
            seen.last_seen, seen.messages = now, seen.messages + 1
            self.pending[serial] = seen
            return "unknown_vehicle", "not in the fleet: listed as pending until an operator admits it"
        expected = (settings.manufacturer if settings else None) or self._identity.get(serial)
        if expected is not None and expected != key.manufacturer:
            return "impersonation", f"serial number {serial} belongs to manufacturer '{expected}'"
        self._identity.setdefault(serial, key.manufacturer)
        tokens, at = self._buckets.get((serial, topic), (FLOOD_BURST, now))
        tokens = min(FLOOD_BURST, tokens + (now - at) * FLOOD_RATE)
        if tokens < 1.0:
            self._buckets[(serial, topic)] = (tokens, now)
            return "flood", f"over {FLOOD_RATE:.0f} messages a second on {topic}"
        self._buckets[(serial, topic)] = (tokens - 1.0, now)
        return None

    def _newer(self, key: VehicleKey, topic: str, header_id: int, now: float) -> bool:
        """Whether a state's headerId follows the last one taken (sec. 6.2: it counts up per
        topic). One that does not is stale or from a second sender and must not hide the real
        states; a very low one after higher ones is the vehicle restarted."""
        last = self._last_header.get((key.serial_number, topic))
        if last is not None and last >= header_id >= RESTART_HEADER_BELOW:
            return False
        self._last_header[(key.serial_number, topic)] = header_id
        return True

    def admit(self, serial_number: str, now: float) -> PendingVehicle:
        """An operator admits a pending vehicle (KeyError: none pending by that serial): it joins
        the fleet as its manufacturer reported, asked for its state at once."""
        seen = self.pending.pop(serial_number)
        self.config.vehicles[serial_number] = VehicleSettings(manufacturer=seen.manufacturer)
        self._request(VehicleKey(seen.manufacturer, serial_number), None, now)
        return seen

    def _on_connection(self, key: VehicleKey, message: Connection, now: float) -> list[Event | VehicleAppeared]:
        link = self.links.get(key.vehicle_id)
        if link is None:
            # Not yet on the map: ask for its state (sec. 6.8.2 stateRequest) to learn where it is.
            if message.connection_state is ConnectionState.ONLINE:
                self._request(key, message.version, now)
            return []
        was = link.connection
        state = link.on_connection(message)
        if state is ConnectionState.ONLINE:
            self._last_header.pop((key.serial_number, "state"), None)  # a new session counts anew
            if was is not ConnectionState.ONLINE:
                self._send(link, "instantActions", to_wire(link.instant("stateRequest", now)))
            return [ConnectionChanged(key.vehicle_id, True)]
        return [ConnectionChanged(key.vehicle_id, False, state.value)]

    def _on_state(self, key: VehicleKey, state: State, now: float) -> list[Event | VehicleAppeared]:
        link = self.links.get(key.vehicle_id)
        out: list[Event | VehicleAppeared] = []
        if link is None:
            node = self._locate(state)
            if node is None:
                return self._drop("unplaced", f"state of {key.vehicle_id}", key, "position matches no map node")
            settings = self.config.vehicles.get(key.serial_number, VehicleSettings())
            pinned = settings.version or (settings.profile.version if settings.profile else None)
            version = pinned or state.version or self.config.default_version
            link = self._unplaced.pop(key.vehicle_id, None) or self._new_link(key, node, version)
            link.node, link.version, link.connection = node, version, ConnectionState.ONLINE
            link.pinned_version, link.profile = pinned is not None, settings.profile
            ahead = tuple(link.adopt(state))
            self.links[key.vehicle_id] = link
            battery = min(1.0, max(0.0, state.battery_state.battery_charge / 100.0))
            out.append(VehicleAppeared(key.vehicle_id, link.node, battery, settings.type_id, ahead))
            self._send(link, "instantActions", to_wire(link.instant("factsheetRequest", now)))
        events, replies = link.on_state(state, now)
        for reply in replies:
            self._send(link, "instantActions", to_wire(reply))
        for missed in link.missed_orders(state, now):
            self._send(link, "order", to_wire(missed))
        out.extend(events)
        return out

    def tick(self, now: float) -> list[Event]:
        """What time alone tells: instant actions no vehicle answered in time."""
        return [event for link in self.links.values() for event in link.tick(now)]

    # ---- outgoing -------------------------------------------------------------------------

    def on_command(self, command: Command, horizon: list[str], now: float) -> None:
        """Turn a core command for a VDA 5050 vehicle into messages in the outbox."""
        if isinstance(command, DriveNodes):
            link = self.links.get(command.vehicle_id)
            if link is not None:
                self._send(link, "order", to_wire(link.drive(command.nodes, horizon, now)))
        elif isinstance(command, PauseVehicle):
            link = self.links.get(command.vehicle_id)
            if link is not None:
                self._send(
                    link, "instantActions", to_wire(link.instant("startPause" if command.paused else "stopPause", now))
                )
        elif isinstance(command, InitPosition):
            link = self.links.get(command.vehicle_id)
            if link is not None:
                self._send(link, "instantActions", to_wire(link.init_position(command.node, now)))
        elif isinstance(command, CancelDrive):
            link = self.links.get(command.vehicle_id)
            if link is not None:
                self._send(link, "instantActions", to_wire(link.cancel(now)))
        elif isinstance(command, StopCharging):
            link = self.links.get(command.vehicle_id)
            if link is not None and (stop := link.stop_charging(now)) is not None:
                self._send(link, "instantActions", to_wire(stop))
        elif isinstance(command, StartAction):
            link = self.links.get(command.vehicle_id)
            if link is None:
                return
            if command.action is ActionKind.CHARGE:
                until = command.until_battery if command.until_battery is not None else 1.0
                self._send(link, "instantActions", to_wire(link.start_charging(until, now)))
            else:
                self._send(link, "order", to_wire(link.node_action(command.action, command.place_id, now)))

    def metrics(self) -> list[Sample]:
        """Messages received by topic and dropped by reason, for /metrics."""
        out = [
            Sample(
                "fleet_vda5050_messages_received_total",
                "counter",
                "VDA 5050 messages accepted, by topic.",
                n,
                (("topic", t),),
            )
            for t, n in sorted(self.received.items())
        ]
        out += [
            Sample(
                "fleet_vda5050_messages_dropped_total",
                "counter",
                "VDA 5050 messages dropped, by reason.",
                n,
                (("reason", r),),
            )
            for r, n in sorted(self.dropped.items())
        ]
        out += [
            Sample(
                "fleet_vda5050_messages_sent_total", "counter", "VDA 5050 messages sent, by topic.", n, (("topic", t),)
            )
            for t, n in sorted(self.sent.items())
        ]
        out.append(Sample("fleet_vda5050_vehicles", "gauge", "Vehicles with a VDA 5050 link.", len(self.links)))
        return out

    def take_outbox(self) -> list[Outgoing]:
        out, self._outbox = self._outbox, []
        return out

    # ---- helpers --------------------------------------------------------------------------

    def _send(self, link: VehicleLink, topic: str, body: dict[str, Any]) -> None:
        body = _with_quirks(link.profile, topic, body) if link.profile is not None else body
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.sent[topic] += 1
        key = f"order:{body['orderId']}:{body['orderUpdateId']}" if topic == "order" else None
        self._outbox.append(Outgoing(self.config.layout.topic(link.key, topic), payload, QOS[topic], key=key))

    def _request(self, key: VehicleKey, version: str | None, now: float) -> None:
        """stateRequest to a vehicle not yet placed, through a link kept until it is, so that its
        headerIds keep increasing (sec. 6.2) however often it comes online first."""
        link = self._unplaced.get(key.vehicle_id)
        if link is None:
            settings = self.config.vehicles.get(key.serial_number, VehicleSettings())
            profile = settings.profile
            version = settings.version or (profile.version if profile else None) or version
            link = self._new_link(key, self.map.nodes[0].id, version or self.config.default_version)
            link.profile = profile
            self._unplaced[key.vehicle_id] = link
        self._send(link, "instantActions", to_wire(link.instant("stateRequest", now)))

    def _new_link(self, key: VehicleKey, node: str, version: str) -> VehicleLink:
        return VehicleLink(
            key,
            self.map,
            node=node,
            version=version,
            order_prefix=self.config.order_prefix,
            header_base=self.config.header_base,
        )

    def published(self, topic: str, now: float) -> None:
        """A message of ours left for the broker (see `VehicleLink.published`)."""
        parsed = self.config.layout.parse(topic)
        link = self.links.get(parsed[0].vehicle_id) if parsed is not None else None
        if link is not None:
            link.published(topic, now)

    def use_map(self, fmap: FacilityMap) -> None:
        """A new map is active: positions in orders and placing vehicles follow it."""
        self.map = fmap
        for link in [*self.links.values(), *self._unplaced.values()]:
            link.fmap = fmap

    def forget(self, vehicle_id: str) -> None:
        """Take back a first sighting the core could not place (its node held by another): the
        vehicle's next state tries again."""
        link = self.links.pop(vehicle_id, None)
        if link is not None:
            self._unplaced[vehicle_id] = link

    def _locate(self, state: State) -> str | None:
        if state.last_node_id in self.map.node_by_id:
            return state.last_node_id
        pos = state.agv_position
        if pos is None:
            return None
        best = min(self.map.nodes, key=lambda n: math.hypot(n.x - pos.x, n.y - pos.y))
        return best.id if math.hypot(best.x - pos.x, best.y - pos.y) <= 0.5 else None

    def _drop(self, reason: str, topic: str, key: VehicleKey | None, detail: str) -> list[Event | VehicleAppeared]:
        """Count a dropped message; log the first of each reason and vehicle, then every
        `LOG_EVERY`th (a flood must not fill the log)."""
        self.dropped[reason] += 1
        vehicle = key.vehicle_id if key else "?"
        if len(self._drops_by) > 10 * PENDING_MAX:
            self._drops_by.clear()
        seen = self._drops_by[(reason, vehicle[:100])] = self._drops_by.get((reason, vehicle[:100]), 0) + 1
        if seen == 1 or seen % LOG_EVERY == 0:
            log.warning(
                "dropped VDA 5050 message (%d so far): vehicle=%s topic=%s reason=%s: %s",
                seen,
                vehicle[:100],
                topic[:200],
                reason,
                detail[:200],
            )
        return []
