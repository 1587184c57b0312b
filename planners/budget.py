"""The time a planner may work, handed in as one object (as PyVRP's stopping criteria are).

A planner never reads a clock of its own: it asks its budget how much is left, whether it is
spent, and hands a part of it to the step it calls. The clock is wall time by default (the
solvers' own limits are wall time too); a test may give a counter instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TimeBudget:
    """`seconds` of work from the moment it is made."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds = seconds
        self._clock = clock
        self._start = clock()

    def spent(self) -> float:
        """Seconds used so far."""
        return self._clock() - self._start

    def left(self) -> float:
        """Seconds that remain (negative once over)."""
        return self.seconds - self.spent()

    def over(self) -> bool:
        return self.spent() > self.seconds

    def part(self, seconds: float) -> TimeBudget:
        """A budget of `seconds` from now, never beyond this one's end."""
        return TimeBudget(min(seconds, self.left()), self._clock)


def as_budget(limit: float | TimeBudget) -> TimeBudget:
    """A budget of `limit` seconds from now, or `limit` itself (one budget shared by the steps
    of a caller's work)."""
    return limit if isinstance(limit, TimeBudget) else TimeBudget(limit)


NO_LIMIT = TimeBudget(float("inf"))
