"""Request and response bodies of the HTTP API, kept apart from the domain model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet.alarms import JournalEntry, RaisedAlarm
from fleet.model import OrderState, TransportOrder, Vehicle

# Bounds every request body keeps (so nothing stored can overflow a solver's integers or a
# JSON encoder): times are seconds since the epoch up to the year 2100, ids and names short.
TIME_MAX_S = 4_102_444_800.0
ID_MAX = 100
_IN = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=1000)


class OrderCreate(BaseModel):
    """A transport request from a PLC or an operator."""

    model_config = _IN

    pickup: str = Field(
        min_length=1, max_length=ID_MAX, description="station id where the load is picked up", alias="from"
    )
    dropoff: str = Field(
        min_length=1, max_length=ID_MAX, description="station id where the load is dropped off", alias="to"
    )
    priority: int = Field(default=0, ge=0, le=10, description="0 normal ... 10 most urgent")
    load_type: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX, description="defaults to a load type both stations handle"
    )
    due_at: float | None = Field(
        default=None,
        ge=0,
        le=TIME_MAX_S,
        description="when the load is needed at the drop-off, seconds since the epoch (as created_at), finite",
    )
    ready_at: float | None = Field(
        default=None,
        ge=0,
        le=TIME_MAX_S,
        description="when the load is ready at the pick-up, seconds since the epoch: a vehicle there sooner waits"
        " (none or past: ready now)",
    )


class CallCreate(BaseModel):
    """A station's call from its PLC: bring material, or take the load away."""

    model_config = _IN

    station: str = Field(min_length=1, max_length=ID_MAX, description="the calling station")
    need: Literal["material", "removal"]
    load_type: str | None = Field(default=None, min_length=1, max_length=ID_MAX)
    priority: int = Field(default=0, ge=0, le=10)
    request_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="the PLC's id; same effect as an Idempotency-Key"
    )


class OrderCancel(BaseModel):
    model_config = _IN

    reason: str = Field(default="cancelled by operator", min_length=1, max_length=500)


class OrderPatch(BaseModel):
    model_config = _IN

    priority: int = Field(ge=0, le=10)


class TransitionOut(BaseModel):
    at: float
    state: OrderState
    vehicle_id: str | None
    reason: str | None


class DecisionOut(BaseModel):
    """The dispatcher's last assignment of the order and its terms in the plan it chose."""

    vehicle_id: str
    at: float
    completion_s: float = Field(description="expected seconds from the decision to the drop-off done")
    queue_position: int = Field(description="1: the vehicle's next order")
    lateness_s: float = Field(description="expected seconds past the due time (0: on time or none)")
    priority_weight: int = Field(description="1 + priority (11 + 1 once the order waited beyond the bound)")
    objective: float = Field(description="this order's term in the plan: weight x (completion + 10 x lateness)")
    moved_from: str | None = Field(description="the vehicle it had before, when the new plan moved it")


class OrderOut(BaseModel):
    id: str
    pickup: str
    dropoff: str
    load_type: str
    priority: int
    state: OrderState
    vehicle_id: str | None
    reason: str | None
    created_at: float
    due_at: float | None
    ready_at: float | None
    lateness_s: float | None = Field(description="seconds finished after due_at (negative: early); None while open")
    history: list[TransitionOut]
    decision: DecisionOut | None = Field(default=None, description="its last assignment and why (none: unassigned)")

    @classmethod
    def of(cls, order: TransportOrder) -> OrderOut:
        return cls(
            id=order.id,
            pickup=order.pickup,
            dropoff=order.dropoff,
            load_type=order.load_type,
            priority=order.priority,
            state=order.state,
            vehicle_id=order.vehicle_id,
            reason=order.reason,
            created_at=order.created_at,
            due_at=order.due_at,
            ready_at=order.ready_at,
            lateness_s=_lateness(order),
            history=[
                TransitionOut(at=t.at, state=t.state, vehicle_id=t.vehicle_id, reason=t.reason) for t in order.history
            ],
            decision=DecisionOut.model_validate(order.decision.as_dict()) if order.decision else None,
        )


def _lateness(order: TransportOrder) -> float | None:
    if order.due_at is None or order.state is not OrderState.FINISHED:
        return None
    return round(order.history[-1].at - order.due_at, 1)


class VehicleOut(BaseModel):
    id: str
    type: str
    node: str
    x: float
    y: float
    heading: float
    battery: float
    activity: str = Field(description="order, park, charge (what it does), else idle, out_of_service, not_reported")
    in_service: bool
    paused: bool
    available: bool = Field(
        description="may be given new work: in service, online, automatic, no fatal error, no e-stop"
    )
    mode: str
    connection: str = Field(
        description="online, offline or connectionbroken, as the vehicle (or its last will) reports"
    )
    connection_since: float | None = Field(
        description="when the connection came to that state (null: since first seen)"
    )
    errors: list[str] = Field(description="'LEVEL type: description (hint: ...)', as the vehicle reports them")
    safety_stop: str | None = Field(description="what its safety system stops it for: e-stop (kind), field violation")
    lacks: list[str] = Field(description="actions the controller needs that its factsheet does not list")
    unfit: list[str] = Field(description="what its factsheet states that this plant cannot meet: it gets no orders")
    load_mismatch: str | None = Field(
        description="its load sensing disagrees with the record; it waits for a load decision (POST .../load-decision)"
    )
    order_id: str | None
    queue: list[str] = Field(description="orders it is to pick up, in sequence")
    loads: list[str] = Field(description="orders whose loads it carries")
    stops: list[str] = Field(description="its stops after the current one, as 'pickup ORDER' or 'dropoff ORDER'")
    wait_reason: str | None
    base: list[str] = Field(description="nodes released to the vehicle still ahead (VDA 5050 base)")
    horizon: list[str] = Field(description="nodes planned beyond the base, not released yet")

    @classmethod
    def of(cls, vehicle: Vehicle, wait_reason: str | None, path: tuple[list[str], list[str]] = ([], [])) -> VehicleOut:
        task = vehicle.task
        if not vehicle.placed:
            activity = "not_reported"
        elif task is not None:
            activity = task.kind.value
        else:
            activity = "idle" if vehicle.in_service else "out_of_service"
        return cls(
            id=vehicle.id,
            type=vehicle.type_id,
            node=vehicle.node,
            x=round(vehicle.x, 3),
            y=round(vehicle.y, 3),
            heading=round(vehicle.heading, 4),
            battery=round(vehicle.battery, 4),
            activity=activity,
            paused=vehicle.paused,
            in_service=vehicle.in_service,
            available=vehicle.available,
            mode=vehicle.mode,
            connection=vehicle.connection,
            connection_since=vehicle.connection_since,
            errors=list(vehicle.errors),
            safety_stop=vehicle.safety_stop,
            lacks=list(vehicle.lacks),
            unfit=list(vehicle.unfit),
            load_mismatch=vehicle.load_mismatch,
            order_id=task.order_id if task else None,
            queue=list(vehicle.queue),
            loads=list(vehicle.loads),
            stops=[f"{s.kind.value} {s.order_id}" for s in vehicle.stops],
            wait_reason=wait_reason,
            base=path[0],
            horizon=path[1],
        )


class InitPositionIn(BaseModel):
    model_config = _IN

    node: str = Field(min_length=1, max_length=ID_MAX, description="map node where the vehicle stands")


class LoadDecisionIn(BaseModel):
    model_config = _IN

    trust: Literal["record", "vehicle"] = Field(
        description="record: the controller's record is right, work goes on; vehicle: its report is right, "
        "the orders of loads it does not carry fail (a load nobody ordered: it waits until it is taken off)"
    )


class SendTo(BaseModel):
    model_config = _IN

    place_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX, description="parking spot or charger id; default: nearest free"
    )


class ClosedLanes(BaseModel):
    closed: list[str]


class AlarmOut(BaseModel):
    id: int
    code: str = Field(
        description="deadlock, position-conflict, vehicle-error, vehicle-offline, blocked-by-closure, ..."
        " (the catalogue in docs/control-room.md)"
    )
    severity: str = Field(description="critical, high, medium or low")
    state: str = Field(
        description="active-unacknowledged, active-acknowledged, cleared-unacknowledged or cleared-acknowledged"
    )
    message: str
    vehicle_id: str | None
    order_id: str | None
    raised_at: float
    count: int = Field(description="how often the condition was raised while this alarm was open")
    last_raised_at: float | None
    cleared_at: float | None = Field(description="when the condition ended (a latched alarm: when acknowledged)")
    acknowledged_by: str | None = Field(description="who acknowledged it (role, or the person)")
    acknowledged_at: float | None
    shelved_until: float | None = Field(description="off the open list until then")
    shelved_by: str | None

    @classmethod
    def of(cls, alarm: RaisedAlarm) -> AlarmOut:
        return cls.model_validate(alarm, from_attributes=True)


class AlarmSummary(BaseModel):
    """Open alarms at a glance: by severity (shelved ones not counted there), unacknowledged, shelved."""

    critical: int
    high: int
    medium: int
    low: int
    unacknowledged: int
    shelved: int


class Overview(BaseModel):
    """The plant at a glance, for the control room's header strip."""

    mode: str = Field(description="running, paused (the fleet's emergency pause), starting (the start-up hold)")
    problems: list[str] = Field(description="what fails (storage, dispatching, deadlock checks)")
    open_orders: int
    late_orders: int = Field(description="open orders past their due time")
    vehicles: int
    vehicles_blocked: list[str] = Field(description="cut off from their goal by closures")
    vehicles_in_trouble: list[str] = Field(
        description="offline, with an error, stopped by their safety system, or out of service"
    )
    alarms: AlarmSummary


class ShelveIn(BaseModel):
    model_config = _IN
    minutes: float = Field(gt=0, le=720, allow_inf_nan=False, description="how long, at most 12 hours")


class JournalEntryOut(BaseModel):
    """Something that happened and needs nobody to act: a lane opened, a limit changed, a
    deadlock broken, a condition ended."""

    id: int
    code: str
    message: str
    vehicle_id: str | None
    order_id: str | None
    at: float

    @classmethod
    def of(cls, entry: JournalEntry) -> JournalEntryOut:
        return cls.model_validate(entry, from_attributes=True)


class AuditEntry(BaseModel):
    id: int
    at: float
    who: str = Field(description="role of the key presented, 'no key' or 'unknown key'")
    key_id: str | None = Field(description="fingerprint of the key presented (not the key)")
    method: str
    path: str
    status: int = Field(description="the HTTP status the request was answered with")


class ClosedZones(BaseModel):
    closed: list[str]


class FleetPause(BaseModel):
    paused: bool


class AdmissionIn(BaseModel):
    """Admission control: how many vehicles may work on orders at once."""

    model_config = _IN

    max_working_vehicles: int | None = Field(
        ge=1, le=10_000, description="at most this many vehicles work on orders at once; null: every vehicle may"
    )


class AdmissionOut(BaseModel):
    max_working_vehicles: int | None = Field(description="the limit in force; null: none")
    working: int = Field(description="vehicles working on orders now (more than the limit after it was lowered)")


class Health(BaseModel):
    status: str = Field(description="ok, or degraded: something fails (problems says what)")
    problems: list[str] = Field(
        default_factory=list, description="what fails: storage, dispatching, quarantined orders"
    )
    map: str
    vehicles: int
    open_orders: int
    finished_orders: int
    time: float


class FieldProblem(BaseModel):
    field: str = Field(description="path of the field at fault: due_at, query.limit, header.last-event-id")
    message: str


class ErrorOut(BaseModel):
    """Every refusal (RFC 9457 problem details)."""

    type: str = "about:blank"
    title: str = Field(description="the status's name")
    status: int
    detail: str = Field(description="what is wrong, one sentence")
    field: str | None = Field(default=None, description="the first field at fault, if a field is")
    errors: list[FieldProblem] = Field(default_factory=list, description="every problem found, each with its field")


class CallOut(BaseModel):
    """A PLC call kept by its idempotency key, and the order it created."""

    idempotency_key: str
    order_id: str
    created_at: float


class CellOut(BaseModel):
    """A robot cell's current transfer: which vehicle, its state (requested, running, done,
    failed, timed_out) and whether it waits for the operator to retry or abort."""

    vehicle_id: str | None
    state: str | None
    waiting_for_operator: bool


class StationOut(BaseModel):
    """A station with what is open there: orders picking up or dropping off, and its calls."""

    id: str
    node: str
    kind: str
    load_types: list[str]
    open_orders: list[OrderOut]
    calls: list[CallOut] = Field(description="the newest calls the station made with an idempotency key")
    cell: CellOut | None = Field(None, description="the robot cell serving the station, if one does")


class KeyCreate(BaseModel):
    model_config = _IN

    role: Literal["plc", "viewer", "operator", "admin"]
    station: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX, description="the station of a plc key (required for plc)"
    )


class KeyOut(BaseModel):
    """A key as stored: never the key itself."""

    id: str
    role: str
    station: str | None
    created_at: float


class KeyCreated(KeyOut):
    key: str = Field(description="the new key: shown this once, only its salted hash is kept")


class WhoAmI(BaseModel):
    role: str
    station: str | None = None


class MapStored(BaseModel):
    """A map uploaded through the API."""

    id: int
    name: str
    uploaded_at: float
    uploaded_by: str
    active: bool = Field(description="the map the controller loads at start")
    activated_at: float | None


class MapActivation(BaseModel):
    map: MapStored
    in_use: bool = Field(description="the controller runs on it now")
    waiting_for: list[str] = Field(
        description="why it is not in use yet: it will be at the next start of the controller (between shifts)"
    )


class MapProblems(BaseModel):
    """A map's check: `problems` empty when valid; as a 422 it also carries ErrorOut's fields."""

    detail: str
    problems: list[str] = Field(description="every problem found, one sentence each")


class Readiness(BaseModel):
    ready: bool
    problems: list[str] = Field(description="why not ready yet; empty when ready")


class KpisOut(BaseModel):
    """KPIs of the recent past (the shift panel of the control room)."""

    window_s: float
    covered_s: float = Field(
        description="the part of the window the controller has run: rates, means and bins are over it (at least 60 s)"
    )
    orders_finished: int
    finished_per_hour: float
    lead_time_mean_s: float = Field(description="from acceptance to delivery, of the orders finished in the window")
    lead_time_p95_s: float
    utilisation: float = Field(description="share of vehicle time spent on an order")
    waiting_s_by_cause: dict[str, float] = Field(description="vehicle-seconds stood still, by what was in the way")
    bin_s: float
    finished_by_bin: list[tuple[float, int]] = Field(description="(bin start, orders finished in it), oldest first")


class PendingVehicleOut(BaseModel):
    """A vehicle that reported in but is not in the fleet: none of its messages reach the
    controller until an operator admits it."""

    serial_number: str
    manufacturer: str
    first_seen: float
    last_seen: float
    messages: int = Field(description="messages it sent (all dropped) since it was first seen")
