"""What the core knows of whoever solves its assignment problems: a seam, no process and no clock.

The core hands a run's problem to a `Solver` and keeps running; it polls the `PendingSolve` it got
back at each tick and applies the plan when it is done. The shell owns the solver and its wall
time: the server gives a worker process (`fleet.solver_pool.SolverPool`, which alone decides when
a solve is overdue, by the machine's clock); the simulator gives none and solves in its step.
"""

from __future__ import annotations

from typing import Protocol

from fleet.dispatcher import AssignRequest, DispatchConfig
from planners.assignment import AssignmentPlan, TravelMatrix


class MissingTravel(LookupError):
    """The solver does not have this graph version's travel matrix (it is new, or was restarted)."""


class PendingSolve(Protocol):
    """A solve under way (a `concurrent.futures.Future` in the server)."""

    def done(self) -> bool: ...

    def result(self) -> AssignmentPlan: ...


class Solver(Protocol):
    @property
    def grace_s(self) -> float: ...

    def submit(
        self, version: int, travel: TravelMatrix, request: AssignRequest, config: DispatchConfig
    ) -> PendingSolve: ...

    def overdue(self, pending: PendingSolve) -> bool:
        """Whether a solve not done has run too long by the shell's clock (its worker hung)."""
        ...

    def forget(self) -> None:
        """Send the travel matrix again with the next solve."""
        ...

    def restart(self) -> None:
        """Replace the worker (dead, or not answering)."""
        ...
