"""Shift KPIs of the live controller: orders finished per hour, lead times, vehicle utilisation
and waiting time by cause, over a window of the recent past (the control room's shift panel).

`ShiftCounters` accumulates vehicle time as the shell feeds it the controller's state (each
step of the loop); finished orders and lead times come from the orders' own histories. Pure:
times come from the caller, which reads the controller's clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fleet.model import OrderState, TaskKind, TransportOrder, Vehicle


def lead_times(orders: Iterable[TransportOrder]) -> list[float]:
    """Seconds from acceptance (or, for a load ready later, from its ready time: the plant asked
    for it then) to finish of each finished order."""
    out = []
    for o in orders:
        done = o.entered(OrderState.FINISHED)
        if done is not None:
            out.append(done - o.waiting_since)
    return out


def summarise_lead_times(times: list[float]) -> tuple[float, float]:
    """(mean, 95th percentile); zeros when there are none."""
    if not times:
        return 0.0, 0.0
    arr = np.array(times)
    return float(arr.mean()), float(np.percentile(arr, 95))


@dataclass
class ShiftCounters:
    """Vehicle-seconds in each state, in one-minute buckets, so any recent window can be summed."""

    bucket_s: float = 60.0
    keep_s: float = 24 * 3600.0
    _starts: list[float] = field(default_factory=list)
    _vehicle_s: list[float] = field(default_factory=list)
    _busy_s: list[float] = field(default_factory=list)
    _waiting_s: list[dict[str, float]] = field(default_factory=list)
    _last: float | None = None
    started: float | None = None  # the first sample: the KPIs cover no time before it

    def sample(self, now: float, vehicles: Iterable[Vehicle], causes: Iterable[str]) -> None:
        """Count the time since the last sample as spent in the state the fleet is in now."""
        if self._last is None or now <= self._last:
            if self._last is None:
                self._last = self.started = now
            return
        dt, self._last = now - self._last, now
        start = now - now % self.bucket_s
        if not self._starts or self._starts[-1] != start:
            self._starts.append(start)
            self._vehicle_s.append(0.0)
            self._busy_s.append(0.0)
            self._waiting_s.append({})
            while self._starts and self._starts[0] < now - self.keep_s:
                for series in (self._starts, self._vehicle_s, self._busy_s, self._waiting_s):
                    series.pop(0)
        placed = [v for v in vehicles if v.placed]
        self._vehicle_s[-1] += dt * len(placed)
        self._busy_s[-1] += dt * sum(1 for v in placed if v.task is not None and v.task.kind is TaskKind.ORDER)
        bucket = self._waiting_s[-1]
        for cause in causes:  # one per vehicle standing still
            bucket[cause] = bucket.get(cause, 0.0) + dt

    def since(self, start: float) -> tuple[float, float, dict[str, float]]:
        """(vehicle-seconds, of them on an order, waiting seconds by cause) since `start`."""
        k = bisect.bisect_left(self._starts, start - self.bucket_s + 1e-9)
        waiting: dict[str, float] = {}
        for bucket in self._waiting_s[k:]:
            for cause, seconds in bucket.items():
                waiting[cause] = waiting.get(cause, 0.0) + seconds
        return sum(self._vehicle_s[k:]), sum(self._busy_s[k:]), waiting


@dataclass(frozen=True, slots=True)
class ShiftKpis:
    window_s: float
    covered_s: float  # the part of the window the controller ran: rates and bins are over it
    orders_finished: int
    finished_per_hour: float
    lead_time_mean_s: float
    lead_time_p95_s: float
    utilisation: float  # share of vehicle time spent on an order
    waiting_s_by_cause: dict[str, float]
    finished_by_bin: list[tuple[float, int]]  # (bin start, orders finished in it), oldest first
    bin_s: float


MIN_COVERED_S = 60.0


def shift_kpis(
    orders: Iterable[TransportOrder], counters: ShiftCounters, now: float, window_s: float, bins: int = 16
) -> ShiftKpis:
    """The KPIs of the last `window_s` seconds, or of the time since the counters started when
    that is shorter (an hour's throughput six minutes into a run is not a sixth of an 8-hour
    rate), with finished orders in `bins` equal bins of it. At least a minute is covered."""
    ran = now - counters.started if counters.started is not None else 0.0
    covered = max(MIN_COVERED_S, min(window_s, ran))
    start = now - covered
    finished = [o for o in orders if (done := o.entered(OrderState.FINISHED)) is not None and done >= start]
    mean, p95 = summarise_lead_times(lead_times(finished))
    vehicle_s, busy_s, waiting = counters.since(start)
    bin_s = covered / bins
    counts = [0] * bins
    for o in finished:
        done = o.entered(OrderState.FINISHED)
        assert done is not None
        counts[min(bins - 1, int((done - start) // bin_s))] += 1
    return ShiftKpis(
        window_s=window_s,
        covered_s=round(covered, 1),
        orders_finished=len(finished),
        finished_per_hour=round(len(finished) * 3600 / covered, 2),
        lead_time_mean_s=round(mean, 1),
        lead_time_p95_s=round(p95, 1),
        utilisation=round(busy_s / vehicle_s, 4) if vehicle_s else 0.0,
        waiting_s_by_cause={k: round(v, 1) for k, v in sorted(waiting.items())},
        finished_by_bin=[(round(start + k * bin_s, 3), n) for k, n in enumerate(counts)],
        bin_s=bin_s,
    )
