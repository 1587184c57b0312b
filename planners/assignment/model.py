"""The assignment problem and its plans: orders, vehicles, stops, the energy model, and the solver's
units (times in deciseconds, energy in decawatt-hours as integers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from maps import VehicleType

_SCALE = 10  # solver time unit: 0.1 s
_UNREACHABLE = 10**7  # solver cost standing in for "no path", in solver units
_COMPLETION_WEIGHT = 10  # completion time dominates travel in the solver objective
_LATENESS_WEIGHT = 100  # per solver unit late at pick-up w.r.t. the due time
_ENERGY_SCALE = 10  # solver energy unit: 0.1 Wh
LATENESS_PER_COMPLETION = _LATENESS_WEIGHT / _COMPLETION_WEIGHT  # a second late weighs as this many of completion


class StopKind(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


@dataclass(frozen=True, slots=True)
class OrderTask:
    """One order as the planner sees it: node indices, service times, priority, an optional due
    time at the drop-off (soft: lateness is weighed) and the time its load is ready at the
    pick-up (hard: a vehicle there earlier waits)."""

    id: str
    pickup: int
    dropoff: int
    pickup_service_s: float = 0.0
    dropoff_service_s: float = 0.0
    priority: int = 0
    due_in_s: float | None = None
    ready_in_s: float = 0.0  # the load may not be picked up before
    allowed_vehicles: frozenset[str] | None = None  # None: any vehicle may serve it
    current_vehicle: str | None = None  # the vehicle it is assigned to now, if any

    def __post_init__(self) -> None:
        if self.pickup_service_s < 0 or self.dropoff_service_s < 0:
            raise ValueError(f"order {self.id}: negative service time")
        if self.priority < 0:
            raise ValueError(f"order {self.id}: priority must be >= 0")
        if not self.ready_in_s >= 0:  # NaN too
            raise ValueError(f"order {self.id}: ready_in_s must be >= 0")

    @property
    def weight(self) -> int:
        return 1 + self.priority

    @property
    def stops(self) -> tuple[Stop, Stop]:
        """Its pick-up and drop-off, served one after the other."""
        return Stop(self.id, StopKind.PICKUP), Stop(self.id, StopKind.DROPOFF)


@dataclass(frozen=True, eq=False)
class EnergyUse:
    """How a vehicle type uses its battery, in Wh, on a graph whose travel times it is given.

    Driving draws `drive_w` (top speed times consumption per metre: lanes are no faster, so
    travel time bounds distance and the estimate errs on the safe side), plus `load_w` per load
    on board while driving (`route_energy`). `idle_w` is drawn all the time,
    driving, serving or waiting. `to_charger_s[n]`: travel time from node n to the nearest
    charger (inf: none reachable)."""

    drive_w: float
    load_w: float
    idle_w: float
    to_charger_s: npt.NDArray[np.float64]

    def driving(self, seconds: float) -> float:
        return seconds * (self.drive_w + self.idle_w) / 3600

    def standing(self, seconds: float) -> float:
        return seconds * self.idle_w / 3600

    def loaded(self, seconds: float) -> float:
        return seconds * self.load_w / 3600

    def to_charger(self, node: int) -> float:
        return self.driving(float(self.to_charger_s[node]))


def energy_use_for(vtype: VehicleType, travel: TravelMatrix, chargers: Sequence[int]) -> EnergyUse:
    """The energy model of a vehicle type on a graph with the given charger nodes."""
    to_charger = travel[:, list(chargers)].min(axis=1) if chargers else np.full(len(travel), np.inf)
    return EnergyUse(
        drive_w=vtype.max_speed * vtype.consumption_wh_per_m * 3600,
        load_w=vtype.max_speed * vtype.load_consumption_wh_per_m * 3600,
        idle_w=vtype.idle_power_w,
        to_charger_s=to_charger,
    )


@dataclass(frozen=True, slots=True)
class VehicleSlot:
    """A vehicle free to take work at node `node` in `available_in_s` seconds, carrying up to
    `capacity` loads; with `energy`, it may use `energy_wh` on its route and the drive to a
    charger after it."""

    id: str
    node: int
    available_in_s: float = 0.0
    capacity: int = 1
    energy_wh: float = float("inf")
    energy: EnergyUse | None = None

    def __post_init__(self) -> None:
        if self.available_in_s < 0:
            raise ValueError(f"vehicle {self.id}: available_in_s must be >= 0")
        if self.capacity < 1:
            raise ValueError(f"vehicle {self.id}: capacity must be >= 1")


@dataclass(frozen=True, slots=True)
class Stop:
    order_id: str
    kind: StopKind


@dataclass(frozen=True)
class AssignmentPlan:
    """Routes of stops per vehicle, completion time per served order, and the weighted objective."""

    routes: Mapping[str, tuple[Stop, ...]]
    completion_s: Mapping[str, float]
    objective: float
    unassigned: tuple[str, ...] = ()
    solver: str = "greedy"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def orders_of(self, vehicle_id: str) -> tuple[str, ...]:
        """Orders of a vehicle in the order their pick-ups happen."""
        return tuple(s.order_id for s in self.routes.get(vehicle_id, ()) if s.kind is StopKind.PICKUP)


TravelMatrix = npt.NDArray[np.float64]
