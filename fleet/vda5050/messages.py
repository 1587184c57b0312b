"""VDA 5050 messages (versions 2.0 and 2.1) as pydantic models: snake_case in Python, camelCase on the wire.

Section numbers refer to the VDA 5050 2.1 specification text. Incoming messages are parsed with
`parse_message`; fields the model does not know are ignored (vehicles of other makers add their
own, and 2.1 vehicles send fields a 2.0 model lacks), while missing required fields, wrong types
and values outside the enumerations are errors. Outgoing messages are serialised with
`to_wire`, which leaves out unset optional fields as the specification asks (sec. 6.1).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SUPPORTED_VERSIONS = ("2.0.0", "2.1.0")


class _Wire(BaseModel):
    # Every number finite (JSON parsers take NaN and Infinity), every string bounded: a hostile
    # message is refused here, counted and dropped, and never reaches the core.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
        str_max_length=10_000,
    )


def parse_timestamp(text: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 header timestamp (None when absent or unreadable)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def timestamp(seconds: float) -> str:
    """ISO 8601 UTC with milliseconds, as sec. 6.2 shows: 2017-04-15T11:40:03.123Z."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Header(_Wire):
    """Sec. 6.2: every message starts with these fields; headerId counts per topic and sender."""

    header_id: int = Field(ge=0)
    timestamp: str
    version: str
    manufacturer: str
    serial_number: str


# ---- order (sec. 6.6) -------------------------------------------------------------------------


class BlockingType(StrEnum):
    NONE = "NONE"
    SOFT = "SOFT"
    HARD = "HARD"


class ActionParameter(_Wire):
    key: str
    value: Any


class Action(_Wire):
    """Sec. 6.6.3 / 6.8: an action on a node or edge, or as an instant action."""

    action_type: str
    action_id: str
    blocking_type: BlockingType
    action_description: str | None = None
    action_parameters: list[ActionParameter] | None = None


class NodePosition(_Wire):
    x: float
    y: float
    map_id: str
    theta: float | None = None
    allowed_deviation_xy: float | None = Field(default=None, alias="allowedDeviationXY")
    allowed_deviation_theta: float | None = None
    map_description: str | None = None


class Node(_Wire):
    node_id: str
    sequence_id: int = Field(ge=0)
    released: bool
    actions: list[Action]
    node_position: NodePosition | None = None
    node_description: str | None = None


class Edge(_Wire):
    edge_id: str
    sequence_id: int = Field(ge=0)
    released: bool
    start_node_id: str
    end_node_id: str
    actions: list[Action]
    max_speed: float | None = None
    length: float | None = None
    edge_description: str | None = None


class Order(Header):
    """Sec. 6.6: nodes at even sequence ids, edges at odd ones; base = released, horizon = not."""

    order_id: str
    order_update_id: int = Field(ge=0)
    nodes: list[Node]
    edges: list[Edge]
    zone_set_id: str | None = None


class InstantActions(Header):
    """Sec. 6.8. This controller sends one action per message."""

    actions: list[Action]


# ---- state (sec. 6.10) ------------------------------------------------------------------------


class ActionStatus(StrEnum):
    WAITING = "WAITING"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # listed in 2.1 sec. 6.11, missing from the 2.1.0 schema file
    FINISHED = "FINISHED"
    FAILED = "FAILED"


class OperatingMode(StrEnum):
    AUTOMATIC = "AUTOMATIC"
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    MANUAL = "MANUAL"
    SERVICE = "SERVICE"
    TEACHIN = "TEACHIN"


class NodeState(_Wire):
    node_id: str
    sequence_id: int
    released: bool
    node_description: str | None = None


class EdgeState(_Wire):
    edge_id: str
    sequence_id: int
    released: bool
    edge_description: str | None = None


class AgvPosition(_Wire):
    x: float
    y: float
    theta: float
    map_id: str
    position_initialized: bool
    localization_score: float | None = None
    deviation_range: float | None = None


class Velocity(_Wire):
    vx: float | None = None
    vy: float | None = None
    omega: float | None = None


class Load(_Wire):
    load_id: str | None = None
    load_type: str | None = None
    load_position: str | None = None
    weight: float | None = None


class ActionState(_Wire):
    action_id: str
    action_status: ActionStatus
    action_type: str | None = None
    action_description: str | None = None
    result_description: str | None = None


class BatteryState(_Wire):
    battery_charge: float = Field(ge=0, le=100)
    charging: bool
    battery_voltage: float | None = None
    battery_health: float | None = None
    reach: float | None = None


class ErrorReference(_Wire):
    reference_key: str
    reference_value: str


class ErrorLevel(StrEnum):
    WARNING = "WARNING"
    FATAL = "FATAL"


class VehicleError(_Wire):
    error_type: str
    error_level: ErrorLevel
    error_references: list[ErrorReference] | None = None
    error_description: str | None = None
    error_hint: str | None = None

    def reference(self, key: str) -> str | None:
        for ref in self.error_references or ():
            if ref.reference_key == key:
                return ref.reference_value
        return None

    def text(self) -> str:
        """'LEVEL type: description (hint: ...)', with 2.1's errorHint when the vehicle gives one."""
        text = f"{self.error_level.value} {self.error_type}: {self.error_description or ''}".strip()
        return f"{text} (hint: {self.error_hint})" if self.error_hint else text


class SafetyState(_Wire):
    e_stop: Literal["AUTOACK", "MANUAL", "REMOTE", "NONE"]
    field_violation: bool

    def stop_cause(self) -> str | None:
        """What the vehicle's safety system stops it for, in words (None: nothing)."""
        causes = [f"e-stop ({self.e_stop})"] if self.e_stop != "NONE" else []
        if self.field_violation:
            causes.append("protective field violated")
        return ", ".join(causes) or None


class State(Header):
    """Sec. 6.10: what the vehicle reports, at least every 30 s and on every relevant event."""

    order_id: str
    order_update_id: int
    last_node_id: str
    last_node_sequence_id: int
    node_states: list[NodeState]
    edge_states: list[EdgeState]
    driving: bool
    action_states: list[ActionState]
    battery_state: BatteryState
    operating_mode: OperatingMode
    errors: list[VehicleError]
    safety_state: SafetyState
    paused: bool | None = None
    new_base_request: bool | None = None
    distance_since_last_node: float | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None
    loads: list[Load] | None = None
    zone_set_id: str | None = None


class ConnectionState(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    CONNECTIONBROKEN = "CONNECTIONBROKEN"


class Connection(Header):
    """Sec. 6.14: ONLINE/OFFLINE by the vehicle, CONNECTIONBROKEN as its MQTT last will."""

    connection_state: ConnectionState


class Visualization(_Wire):
    """Sec. 6.13: position at a higher rate than state; every field optional in the schema."""

    header_id: int | None = None
    timestamp: str | None = None
    version: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None


class Factsheet(Header):
    """Sec. 6.15: kept whole as sent; the controller reads only what it needs."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True, allow_inf_nan=False
    )

    type_specification: dict[str, Any] | None = None
    physical_parameters: dict[str, Any] | None = None
    protocol_limits: dict[str, Any] | None = None
    protocol_features: dict[str, Any] | None = None


MESSAGE_TYPES: dict[str, type[_Wire]] = {
    "order": Order,
    "instantActions": InstantActions,
    "state": State,
    "connection": Connection,
    "visualization": Visualization,
    "factsheet": Factsheet,
}


def parse_message(topic: str, payload: bytes | str) -> _Wire:
    """Parse a message of the given VDA 5050 topic; raises pydantic.ValidationError or ValueError."""
    model = MESSAGE_TYPES.get(topic)
    if model is None:
        raise ValueError(f"unknown VDA 5050 topic '{topic}'")
    return model.model_validate_json(payload)


def to_wire(message: BaseModel) -> dict[str, Any]:
    """JSON-ready dict in camelCase without unset optional fields."""
    return message.model_dump(by_alias=True, exclude_none=True, mode="json")
