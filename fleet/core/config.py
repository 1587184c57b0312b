"""What the core's roles share: the controller's settings and counters, the refusal of a request,
and the record of a dispatch solve in flight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fleet.dispatcher import AssignRequest, DispatchConfig
from fleet.model import TransportOrder
from fleet.solving import PendingSolve

MAX_PRIORITY = 10


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    lookahead_nodes: int = 3
    deadlock_check_s: float = 1.0
    redispatch_s: float = 30.0  # re-run the dispatcher this often even without a trigger (batteries drain)
    offline_grace_s: float = 30.0  # an offline vehicle keeps its unstarted orders this long
    planned_traffic: bool = True  # routes planned in time (SIPP), turns taken in the planned order
    clear_s: float = 1.0  # margin around each planned node occupation
    replan_late_s: float = 30.0  # a vehicle this late for its next planned turn is planned again
    idle_stay_s: float = 30.0  # how long plans expect a vehicle with no route onward to stand on a through node
    replan_every_s: float = 10.0  # at most this often per vehicle (late, or driving without a plan)
    # Ended orders (finished, failed, cancelled) leave memory this long after they ended (storage
    # keeps them); None keeps every one (a simulation's report reads them all).
    keep_ended_s: float | None = 86_400.0


RETIRE_EVERY_S = 60.0  # how often ended orders past their window leave memory


class OrderRejected(ValueError):
    """A transport request the plant cannot serve; `field` names the offending request field."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


def no_stopwatch() -> float:
    return 0.0


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def priority_in_range(priority: int) -> None:
    if not 0 <= priority <= MAX_PRIORITY:
        raise OrderRejected("priority", f"must be between 0 and {MAX_PRIORITY}")


@dataclass
class ControllerStats:
    deadlocks: int = 0  # circular waits detected
    deadlocks_resolved: int = 0  # of those, broken by routing a vehicle around or aside
    deadlocks_unresolved: int = 0  # of those, found unbreakable when detected (alarm raised)
    moved_aside: int = 0  # idle vehicles sent off the way of waiting ones
    replans: int = 0  # routes planned again because the vehicle was off its plan or late
    dispatch_runs: int = 0
    reassignments: int = 0
    dispatch_s: float = 0.0  # compute time spent dispatching, by the injected stopwatch
    routes_planned: int = 0
    routes_unplanned: int = 0  # of those, SIPP found no plan: the vehicle drives on claims alone
    planning_s: float = 0.0  # compute time spent planning routes (SIPP), by the injected stopwatch


@dataclass(frozen=True)
class Solving:
    """A dispatch solve running in the solver pool: what it was asked, on which orders as they
    stood, on which graph version, at what time."""

    future: PendingSolve
    request: AssignRequest
    orders: Mapping[str, TransportOrder]
    graph_version: int
    asked_at: float
