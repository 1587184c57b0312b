"""Random delays the controller does not plan for: vehicles slowed, paused and stopped, seeded.

Faults act on the kinematic vehicles directly, behind the controller's back, as a blocked
scanner, a person in the way or a vehicle halted by an error would. The traffic rules must keep
such delays from turning into collisions or deadlocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from sim.vehicle import SimVehicle


class FaultKind(StrEnum):
    SLOW = "slow"  # drives at a fraction of its speed
    PAUSE = "pause"  # stands for a short while
    STOP = "stop"  # stands for minutes


@dataclass(frozen=True, slots=True)
class Fault:
    vehicle_id: str
    kind: FaultKind
    start: float
    end: float


_DURATION_S = {FaultKind.SLOW: (30.0, 120.0), FaultKind.PAUSE: (5.0, 30.0), FaultKind.STOP: (120.0, 300.0)}
_SLOW_FACTOR = 0.3


class FaultInjector:
    """Poisson faults at `per_vehicle_hour` per vehicle; each fault's kind and length are drawn too."""

    def __init__(self, per_vehicle_hour: float, seed: int, start: float = 0.0) -> None:
        self._rng = np.random.default_rng(seed)
        self._rate = per_vehicle_hour / 3600.0
        self._next: float | None = None
        self._start = start
        self.active: list[Fault] = []
        self.history: list[Fault] = []

    def step(self, now: float, vehicles: list[SimVehicle]) -> None:
        if self._rate <= 0 or not vehicles:
            return
        if self._next is None:
            self._next = self._start + float(self._rng.exponential(1 / (self._rate * len(vehicles))))
        while self._next <= now:
            victim = vehicles[int(self._rng.integers(len(vehicles)))]
            kind = list(FaultKind)[int(self._rng.integers(len(FaultKind)))]
            low, high = _DURATION_S[kind]
            fault = Fault(victim.id, kind, self._next, self._next + float(self._rng.uniform(low, high)))
            if not any(f.vehicle_id == victim.id for f in self.active):
                self.active.append(fault)
                self.history.append(fault)
            self._next += float(self._rng.exponential(1 / (self._rate * len(vehicles))))
        by_id = {v.id: v for v in vehicles}
        still = []
        for fault in self.active:
            body = by_id[fault.vehicle_id]
            if now >= fault.end:
                body.speed_factor, body.held = 1.0, False
                continue
            still.append(fault)
            if fault.kind is FaultKind.SLOW:
                body.speed_factor = _SLOW_FACTOR
            else:
                body.held = True
        self.active = still
