"""Clocks the controller core reads time from; the core never calls `time` itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Seconds as a float; only differences matter to the core."""

    def now(self) -> float: ...


class SimClock:
    """Simulated time, advanced by the simulation shell. Single-threaded use only."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time cannot run backwards")
        self._now += seconds


class WallClock:
    """Real time (Unix seconds) for the server shell."""

    def now(self) -> float:
        return time.time()


class ScaledClock:
    """Wall time running `speed` times faster than real time from `anchor` (Unix seconds), where
    it reads `anchor`. Speed 1 is plain wall time. Faster only for simulated plants: processes
    that share one anchor and speed (the controller and its simulated vehicles, or a controller
    restarted mid-run) share one time line."""

    def __init__(self, speed: float = 1.0, anchor: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> float:
        return self.anchor + (time.time() - self.anchor) * self.speed

    def wall_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock's time take in wall time."""
        return seconds / self.speed
