"""Dispatch solves in a process of their own, so the controller's loop never waits for them.

OR-Tools holds the GIL while it searches: a one-second solve on the controller's loop (or in a
thread beside it) is a second in which no API request is answered and no vehicle state read.
The pool runs `fleet.dispatcher.solve_request` in one worker process; the core submits the
run's problem (`AssignRequest`, a few dozen orders and vehicles), keeps running, and applies the
plan when it is back, keeping only what is still true (`Controller._collect_solve`).

The travel-time matrix (0.5 MB for the plant) goes to the worker once per version of the map's
graph, not with every solve. A worker that died is replaced by the next submit; one that does not
answer in time is killed and replaced (`Controller` decides when).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from fleet.dispatcher import AssignRequest, DispatchConfig, solve_request
from fleet.solving import MissingTravel, PendingSolve
from planners.assignment import AssignmentPlan, TravelMatrix

_travel: dict[int, TravelMatrix] = {}  # in the worker: matrices by graph version
PARENT_CHECK_S = 1.0


def _solve(version: int, travel: TravelMatrix | None, request: AssignRequest, config: DispatchConfig) -> AssignmentPlan:
    if travel is not None:
        _travel.clear()
        _travel[version] = travel
    matrix = _travel.get(version)
    if matrix is None:
        raise MissingTravel(version)
    return solve_request(request, matrix, config)


def _warm_up() -> None:
    """Import OR-Tools in the worker before the first real solve needs it."""
    import ortools.constraint_solver.pywrapcp  # noqa: F401


def _follow_parent(parent: int) -> None:
    """In the worker: exit once the controller that started it is gone. A controller killed
    outright (SIGKILL, a crash) cannot shut its pool down, and the worker would live on."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


class SolverPool:
    """One worker process for the dispatcher's solves (`submit` returns a Future): the server's
    `fleet.solving.Solver`. `overdue` tells the controller when a solve has taken longer than three
    of its time budgets and `grace_s` of wall time: its worker is taken to be hung (wall time,
    since the controller's clock may run faster than the machine's: the demo at 20x)."""

    def __init__(self, grace_s: float = 10.0) -> None:
        # spawn: a fresh interpreter, not a fork of one running an event loop and threads.
        self._context = multiprocessing.get_context("spawn")
        self._pool = self._start()
        self._sent: int | None = None  # graph version the worker holds
        self.grace_s = grace_s
        self._asked: tuple[Future[AssignmentPlan], float, float] | None = None  # the last: when, budget

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=1, mp_context=self._context, initializer=_follow_parent, initargs=(os.getpid(),)
        )
        pool.submit(_warm_up)
        return pool

    def submit(
        self, version: int, travel: TravelMatrix, request: AssignRequest, config: DispatchConfig
    ) -> Future[AssignmentPlan]:
        """Solve `request` on the graph of `version` (whose matrix is `travel`)."""
        try:
            future = self._pool.submit(_solve, version, travel if self._sent != version else None, request, config)
        except BrokenProcessPool:  # the worker died (killed, out of memory): a new one
            self.restart()
            future = self._pool.submit(_solve, version, travel, request, config)
        self._sent = version
        self._asked = (future, time.monotonic(), config.time_budget_s)
        return future

    def overdue(self, future: PendingSolve) -> bool:
        """Whether `future`, not done, has run past three time budgets and the grace."""
        if self._asked is None or self._asked[0] is not future or future.done():
            return False
        _, since, budget = self._asked
        return time.monotonic() - since > 3 * budget + self.grace_s

    def forget(self) -> None:
        """The next submit sends its matrix again (after a solve failed for the lack of it)."""
        self._sent = None

    def restart(self) -> None:
        """A new worker in place of the one there (dead, or not answering: it is killed)."""
        self.close()
        self._pool, self._sent = self._start(), None

    def close(self) -> None:
        """Stop the worker now, whatever it is doing (a stopped or hung one would otherwise hold
        up the interpreter's exit, which waits for pool workers)."""
        workers = list((self._pool._processes or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.kill()
