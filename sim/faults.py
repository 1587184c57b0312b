"""Random faults the controller does not plan for, seeded.

Delays (slowed, paused, stopped) act on the kinematic vehicles directly, behind the controller's
back, as a blocked scanner, a person in the way or a vehicle halted by an error would. The
traffic rules must keep them from turning into collisions or deadlocks.

Events (a vehicle's software restarting, a call withdrawn while its vehicle drives to it) happen
at one instant; the simulation carries them out (`Simulation`), for they need the vehicle's
protocol side or the controller: the fault runs of vendor-like VDA 5050 vehicles use them.
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
    RESTART = "restart"  # its software restarts (a VDA 5050 vehicle loses its order)
    WITHDRAW = "withdraw"  # the line withdraws the call the vehicle drives to (the order is cancelled)


DELAYS = (FaultKind.SLOW, FaultKind.PAUSE, FaultKind.STOP)
INSTANT = frozenset({FaultKind.RESTART, FaultKind.WITHDRAW})


@dataclass(frozen=True, slots=True)
class Fault:
    vehicle_id: str
    kind: FaultKind
    start: float
    end: float


_DURATION_S = {FaultKind.SLOW: (30.0, 120.0), FaultKind.PAUSE: (5.0, 30.0), FaultKind.STOP: (120.0, 300.0)}
_SLOW_FACTOR = 0.3


class FaultInjector:
    """Poisson faults at `per_vehicle_hour` per vehicle, of `kinds`; each fault's kind and length
    are drawn too. `step` applies the delays and returns the instant faults now due."""

    def __init__(
        self, per_vehicle_hour: float, seed: int, start: float = 0.0, kinds: tuple[FaultKind, ...] = DELAYS
    ) -> None:
        self._kinds = kinds
        self._rng = np.random.default_rng(seed)
        self._rate = per_vehicle_hour / 3600.0
        self._next: float | None = None
        self._start = start
        self.active: list[Fault] = []
        self.history: list[Fault] = []

    def step(self, now: float, vehicles: list[SimVehicle]) -> list[Fault]:
        if self._rate <= 0 or not vehicles:
            return []
        if self._next is None:
            self._next = self._start + float(self._rng.exponential(1 / (self._rate * len(vehicles))))
        due: list[Fault] = []
        while self._next <= now:
            victim = vehicles[int(self._rng.integers(len(vehicles)))]
            kind = self._kinds[int(self._rng.integers(len(self._kinds)))]
            if kind in INSTANT:
                due.append(Fault(victim.id, kind, self._next, self._next))
            else:
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
        return due

    def carried_out(self, fault: Fault) -> None:
        """The simulation carried out an instant fault (it may skip one: a restart on a lane)."""
        self.history.append(fault)
