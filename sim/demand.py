"""PLC-style transport calls: stations ask for moves at random (Poisson) times, seeded.

Each call picks a pick-up station, then a drop-off station that handles one of its load types;
the stations' load types encode the plant's material flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maps import FacilityMap, Station


@dataclass(frozen=True, slots=True)
class Call:
    at: float
    pickup: str
    dropoff: str
    load_type: str
    priority: int


class DemandGenerator:
    """Poisson arrivals at `orders_per_hour`; `calls_until(t)` returns the calls due by time t."""

    def __init__(self, fmap: FacilityMap, orders_per_hour: float, seed: int, start: float = 0.0) -> None:
        if orders_per_hour < 0:
            raise ValueError("orders_per_hour must be >= 0")
        self._rng = np.random.default_rng(seed)
        self._rate = orders_per_hour / 3600.0
        carried = set().union(*(t.load_types for t in fmap.vehicle_types))
        self._pairs: list[tuple[Station, Station, str]] = []
        for src in fmap.stations:
            if not src.kind.can_pick:
                continue
            for dst in fmap.stations:
                if dst.id == src.id or not dst.kind.can_drop:
                    continue
                for load in sorted(src.load_types & dst.load_types & carried):
                    self._pairs.append((src, dst, load))
        if not self._pairs and orders_per_hour > 0:
            raise ValueError(f"map {fmap.name} has no pick-up/drop-off pair sharing a load type")
        self._next = start + self._gap()

    def _gap(self) -> float:
        return float(self._rng.exponential(1 / self._rate)) if self._rate > 0 else float("inf")

    def calls_until(self, t: float) -> list[Call]:
        calls = []
        while self._next <= t:
            src, dst, load = self._pairs[int(self._rng.integers(len(self._pairs)))]
            priority = int(self._rng.choice([0, 0, 0, 0, 1, 2]))
            calls.append(Call(self._next, src.id, dst.id, load, priority))
            self._next += self._gap()
        return calls
