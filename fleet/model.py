"""Domain model of the controller: transport orders with their lifecycle, and vehicles.

Values are frozen; a change makes a new value (`TransportOrder.transition`). The lifecycle is
explicit: `LEGAL_TRANSITIONS` lists every allowed move and anything else raises
`IllegalTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from planners.assignment import Stop, StopKind


class OrderState(StrEnum):
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    TO_PICKUP = "to_pickup"
    LOADING = "loading"
    TO_DROPOFF = "to_dropoff"
    UNLOADING = "unloading"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (OrderState.FINISHED, OrderState.FAILED, OrderState.CANCELLED)

    @property
    def loaded(self) -> bool:
        """The load is on (or being put on or taken off) a vehicle."""
        return self in (OrderState.LOADING, OrderState.TO_DROPOFF, OrderState.UNLOADING)

    @property
    def started(self) -> bool:
        """A vehicle is committed: it drives to, holds or delivers the load."""
        return self in (OrderState.TO_PICKUP, OrderState.LOADING, OrderState.TO_DROPOFF, OrderState.UNLOADING)


_ENDS = {OrderState.FAILED, OrderState.CANCELLED}
LEGAL_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    # ASSIGNED -> ASSIGNED is a re-assignment to another vehicle before work started;
    # ASSIGNED -> ACCEPTED is a withdrawal by the dispatcher.
    OrderState.ACCEPTED: frozenset({OrderState.ASSIGNED, *_ENDS}),
    OrderState.ASSIGNED: frozenset({OrderState.ASSIGNED, OrderState.ACCEPTED, OrderState.TO_PICKUP, *_ENDS}),
    # TO_PICKUP -> ACCEPTED returns an order to the dispatcher when its vehicle cannot go on
    # (it rejected the path or went offline) before the load was taken.
    OrderState.TO_PICKUP: frozenset({OrderState.LOADING, OrderState.ACCEPTED, *_ENDS}),
    # LOADING -> ACCEPTED: the vehicle refused the pick (the load never left the station);
    # LOADING -> TO_PICKUP: the vehicle lost its pick with its order (a restart) and does it again.
    OrderState.LOADING: frozenset({OrderState.TO_DROPOFF, OrderState.ACCEPTED, OrderState.TO_PICKUP, *_ENDS}),
    OrderState.TO_DROPOFF: frozenset({OrderState.UNLOADING, *_ENDS}),
    # UNLOADING -> TO_DROPOFF: after a restart the controller cannot know whether the drop
    # completed, so the vehicle that holds the load delivers it again (the order finishes once).
    OrderState.UNLOADING: frozenset({OrderState.FINISHED, OrderState.TO_DROPOFF, *_ENDS}),
    OrderState.FINISHED: frozenset(),
    OrderState.FAILED: frozenset(),
    OrderState.CANCELLED: frozenset(),
}


DELIVERY_PATH = (
    OrderState.ACCEPTED,
    OrderState.ASSIGNED,
    OrderState.TO_PICKUP,
    OrderState.LOADING,
    OrderState.TO_DROPOFF,
    OrderState.UNLOADING,
    OrderState.FINISHED,
)
"""The states a delivered order passes through, in order."""


def order_number(order_id: str) -> int:
    """The sequence number in an order id like TO-000042."""
    return int(order_id.rsplit("-", 1)[-1])


class IllegalTransition(ValueError):
    """An order was asked to move to a state its lifecycle does not allow from where it is."""


@dataclass(frozen=True, slots=True)
class Transition:
    at: float
    state: OrderState
    vehicle_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Why the dispatcher gave an order to a vehicle: the order's terms in the plan it chose."""

    vehicle_id: str
    at: float
    completion_s: float  # expected, from the decision to the drop-off done
    queue_position: int  # 1: the vehicle's next order
    lateness_s: float  # expected past the due time (0: on time or no due time)
    priority_weight: int  # 1 + priority, as the solver weighs completion time
    objective: float  # this order's term: weight x (completion + lateness at the solver's rate)
    moved_from: str | None = None  # the vehicle it had before, when the new plan moved it

    def as_dict(self) -> dict[str, object]:
        return {
            "vehicle_id": self.vehicle_id,
            "at": self.at,
            "completion_s": self.completion_s,
            "queue_position": self.queue_position,
            "lateness_s": self.lateness_s,
            "priority_weight": self.priority_weight,
            "objective": self.objective,
            "moved_from": self.moved_from,
        }


@dataclass(frozen=True, slots=True)
class TransportOrder:
    """Move one load from a pick-up station to a drop-off station."""

    id: str
    pickup: str
    dropoff: str
    load_type: str
    priority: int
    created_at: float
    due_at: float | None = None
    ready_at: float | None = None  # the load may not be picked up before (None: ready now)
    state: OrderState = OrderState.ACCEPTED
    vehicle_id: str | None = None
    reason: str | None = None
    history: tuple[Transition, ...] = field(default_factory=tuple)
    decision: Decision | None = None  # the dispatcher's last assignment of it, with its terms

    def __post_init__(self) -> None:
        if self.pickup == self.dropoff:
            raise ValueError(f"order {self.id}: pick-up and drop-off are the same station {self.pickup}")
        if self.priority < 0:
            raise ValueError(f"order {self.id}: priority must be >= 0")
        if self.due_at is not None and self.ready_at is not None and self.due_at <= self.ready_at:
            raise ValueError(f"order {self.id}: due at {self.due_at} but its load is ready only at {self.ready_at}")

    @property
    def waiting_since(self) -> float:
        """When the order began to wait for a vehicle: when it came, or when its load is ready."""
        return max(self.created_at, self.ready_at or self.created_at)

    def transition(
        self, state: OrderState, at: float, vehicle_id: str | None = None, reason: str | None = None
    ) -> TransportOrder:
        """The order in its next state; raises IllegalTransition if the lifecycle forbids the move."""
        if state not in LEGAL_TRANSITIONS[self.state]:
            raise IllegalTransition(f"order {self.id}: {self.state.value} -> {state.value} is not allowed")
        vehicle = None if state is OrderState.ACCEPTED else (vehicle_id or self.vehicle_id)
        return replace(
            self,
            state=state,
            vehicle_id=vehicle,
            reason=reason,
            history=(*self.history, Transition(at, state, vehicle, reason)),
        )

    def entered(self, state: OrderState) -> float | None:
        """When the order last entered `state`, if it did."""
        for t in reversed(self.history):
            if t.state is state:
                return t.at
        return None


class TaskKind(StrEnum):
    ORDER = "order"
    PARK = "park"
    CHARGE = "charge"


class TaskPhase(StrEnum):
    TRAVEL = "travel"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class Task:
    """What a vehicle is doing now: driving to `goal` for an order stop, a parking spot or a charger."""

    kind: TaskKind
    goal: str
    phase: TaskPhase = TaskPhase.TRAVEL
    order_id: str | None = None
    place_id: str | None = None
    opportunity: bool = False  # a charge in idle time, above the charge threshold: an order interrupts it


@dataclass(frozen=True, slots=True)
class Vehicle:
    """The controller's view of one vehicle."""

    id: str
    type_id: str
    node: str
    battery: float
    x: float = 0.0
    y: float = 0.0
    heading: float = 0.0
    task: Task | None = None
    # The stops it is to serve after its task, in sequence: first those of its tour (once it
    # has started one: every pick-up and drop-off until it is empty again, committed), then
    # those the dispatcher plans after it. A vehicle carrying several loads interleaves them.
    stops: tuple[Stop, ...] = ()
    loads: tuple[str, ...] = ()  # the orders whose loads it carries
    in_service: bool = True
    paused: bool = False
    online: bool = True
    offline_since: float | None = None  # cleared once its orders were handed back
    connection: str = "online"  # as it reports: online, offline, connectionbroken
    connection_since: float | None = None  # when that began (None: since it was first seen)
    stopping: bool = False  # a CancelDrive is out; no new work until the vehicle says where it stopped
    automatic: bool = True  # in a mode that takes orders from the controller
    mode: str = "AUTOMATIC"
    errors: tuple[str, ...] = ()  # "LEVEL type: description", as the vehicle reports them
    safety_stop: str | None = None  # what its safety system stops it for (e-stop, field violation)
    placed: bool = True  # False: pre-registered, not yet reported, so not on the map
    lacks: tuple[str, ...] = ()  # actions the controller needs that its factsheet does not list
    unfit: tuple[str, ...] = ()  # what its factsheet states that this plant cannot meet (no orders), in words
    # Its load sensing disagrees with the record: what it reports against what it should carry.
    # It gets no new work and starts no pick or drop until an operator decides (or they agree again).
    load_mismatch: str | None = None

    @property
    def queue(self) -> tuple[str, ...]:
        """The orders it is to pick up, in sequence."""
        return tuple(s.order_id for s in self.stops if s.kind is StopKind.PICKUP)

    @property
    def available(self) -> bool:
        """May be given new work."""
        fatal = any(e.startswith("FATAL") for e in self.errors)
        able = not ({"pick", "drop"} & set(self.lacks))  # a vehicle that cannot handle loads gets no orders
        # An e-stop waits for a person to release it; a field violation is a moment's protective stop.
        e_stopped = self.safety_stop is not None and self.safety_stop.startswith("e-stop")
        return (
            (self.placed and self.in_service and self.online and self.automatic and not fatal and not self.stopping)
            and able
            and not e_stopped
            and self.load_mismatch is None
            and not self.unfit
        )

    def __post_init__(self) -> None:
        if not 0.0 <= self.battery <= 1.0:
            raise ValueError(f"vehicle {self.id}: battery {self.battery} outside 0..1")

    @property
    def idle(self) -> bool:
        """Free for new work: no task, or only parking (which an order interrupts)."""
        return self.task is None or self.task.kind is TaskKind.PARK


@dataclass(slots=True)
class PendingVehicle:
    """A vehicle not in the fleet that reported in (by its protocol's identity): held out, and
    listed for an operator to admit."""

    manufacturer: str
    serial_number: str
    first_seen: float
    last_seen: float
    messages: int = 1
