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
