"""Dispatch solves in the solver pool's process: the core goes on while one runs, applies what is
still true when it is back, and survives a worker that dies. Real processes, real OR-Tools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.clock import SimClock
from fleet.core import Controller, ControllerConfig
from fleet.dispatcher import DispatchConfig
from fleet.events import Alarm, Tick
from fleet.model import OrderState
from fleet.solver_pool import SolverPool
from maps import FacilityMap

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool() -> Iterator[SolverPool]:
    solver = SolverPool()
    yield solver
    solver.close()


def _core(fmap: FacilityMap, pool: SolverPool, budget_s: float = 0.2) -> Controller:
    config = ControllerConfig(dispatch=DispatchConfig(time_budget_s=budget_s))
    core = Controller(fmap, SimClock(), config, solver_pool=pool)
    core.add_vehicle("AGV-01", "cart", "PA1")
    core.add_vehicle("AGV-02", "cart", "PA2")
    return core


@pytest.fixture
def own_pool() -> Iterator[SolverPool]:
    """A pool for one test, whose worker the test may kill or stop (hung after 3 budgets + 1 s)."""
    solver = SolverPool(grace_s=1.0)
    yield solver
    solver.close()


def _solving_one_order(fmap: FacilityMap, solver: SolverPool, budget_s: float) -> tuple[Controller, str, int]:
    """A core with one order whose solve runs in `solver`'s worker, and that worker's pid."""
    core = _core(fmap, solver, budget_s)
    order = core.submit_order("ST-A", "ST-B")
    core.handle(Tick())
    assert core._solving is not None
    (worker,) = list(solver._pool._processes or {})
    return core, order.id, worker


def _back(core: Controller, wall_s: float = 30.0) -> None:
    """Until the running solve is back (it is applied at the next tick)."""
    deadline = time.monotonic() + wall_s
    while core._solving is not None and not core._solving.future.done():
        assert time.monotonic() < deadline, "the solve did not come back"
        time.sleep(0.02)


def test_the_core_goes_on_while_a_solve_runs_and_applies_it_when_back(small_map: FacilityMap, pool: SolverPool) -> None:
    core = _core(small_map, pool, budget_s=2.0)
    orders = [core.submit_order("ST-A", "ST-B"), core.submit_order("ST-C", "ST-B")]
    core.handle(Tick())
    assert core._solving is not None and not core._solving.future.done(), "the tick did not wait for the solve"
    assert all(core.orders[o.id].state is OrderState.ACCEPTED for o in orders)
    core.handle(Tick())  # more ticks meanwhile: no second solve while one runs
    assert core.stats.dispatch_runs == 1
    _back(core)
    core.handle(Tick())
    assigned = [core.orders[o.id] for o in orders]
    assert all(o.state is not OrderState.ACCEPTED and o.vehicle_id is not None for o in assigned)
    reasons = [t.reason or "" for o in assigned for t in o.history if t.state is OrderState.ASSIGNED]
    assert all(r.startswith("assigned to AGV-0") and "min" in r for r in reasons)


def test_an_order_cancelled_during_the_solve_stays_cancelled(small_map: FacilityMap, pool: SolverPool) -> None:
    core = _core(small_map, pool)
    cancelled = core.submit_order("ST-A", "ST-B")
    kept = core.submit_order("ST-C", "ST-B")
    core.handle(Tick())
    assert core._solving is not None
    core.cancel_order(cancelled.id)
    _back(core)
    core.handle(Tick())
    assert core.orders[cancelled.id].state is OrderState.CANCELLED
    assert all(s.order_id != cancelled.id for v in core.vehicles.values() for s in v.stops)
    assert core.orders[kept.id].state is not OrderState.ACCEPTED
    assert core._dispatch_wanted, "another run follows for what was left out"


def test_a_vehicle_out_of_service_during_the_solve_gets_nothing(small_map: FacilityMap, pool: SolverPool) -> None:
    core = _core(small_map, pool)
    orders = [core.submit_order("ST-A", "ST-B"), core.submit_order("ST-C", "ST-B")]
    core.handle(Tick())
    assert core._solving is not None
    core.set_in_service("AGV-02", False)
    _back(core)
    core.handle(Tick())
    assert all(core.orders[o.id].vehicle_id in (None, "AGV-01") for o in orders)
    assert not core.vehicles["AGV-02"].stops
    core.clock.advance(3.0)  # the next run gives AGV-01 what was left out
    core.handle(Tick())
    _back(core)
    core.handle(Tick())
    assert all(core.orders[o.id].vehicle_id == "AGV-01" for o in orders)


def test_a_solve_made_before_a_lane_closed_is_dropped(small_map: FacilityMap, pool: SolverPool) -> None:
    core = _core(small_map, pool)
    order = core.submit_order("ST-A", "ST-B")
    core.handle(Tick())
    first = core._solving
    assert first is not None
    core.close_lane(small_map.lanes[8].id)  # A3-M1: a shortcut, every station still reachable
    _back(core)
    core.handle(Tick())
    assert core.orders[order.id].state is OrderState.ACCEPTED, "the old graph's plan was not applied"
    core.clock.advance(3.0)
    core.handle(Tick())
    assert core._solving is not None and core._solving is not first
    _back(core)
    core.handle(Tick())
    assert core.orders[order.id].state is not OrderState.ACCEPTED


def test_a_worker_that_dies_mid_solve_costs_one_alarm_and_the_run_is_solved_here(
    small_map: FacilityMap, own_pool: SolverPool
) -> None:
    """SIGKILL the worker while it solves: that run is solved in the controller instead, with
    an alarm naming it; the next run starts a new worker and solves there."""
    core, order, worker = _solving_one_order(small_map, own_pool, budget_s=5.0)
    os.kill(worker, signal.SIGKILL)
    _back(core)
    commands = core.handle(Tick())
    alarms = [c for c in commands if isinstance(c, Alarm) and c.code == "dispatch-solver"]
    assert len(alarms) == 1 and "solved in the controller instead" in alarms[0].message
    assert core.orders[order].state is not OrderState.ACCEPTED, "the run was not lost"
    later = core.submit_order("ST-C", "ST-B")
    core.clock.advance(3.0)
    core.handle(Tick())
    assert core._solving is not None
    _back(core)
    core.handle(Tick())
    assert core.orders[later.id].state is not OrderState.ACCEPTED
    assert worker not in (own_pool._pool._processes or {}), "a new worker solved it"


def test_a_worker_that_stops_answering_is_replaced_and_the_run_made_again(
    small_map: FacilityMap, own_pool: SolverPool
) -> None:
    """SIGSTOP the worker mid-solve (as a machine swapping, or a hang would): once the solve is
    overdue (three budgets and the grace, 1 s here, of wall time: the controller's clock may run
    faster, and here it stands still) the worker is killed, one alarm says so, a new worker
    takes the run again, and its plan lands."""
    core, order, stopped = _solving_one_order(small_map, own_pool, budget_s=0.5)
    os.kill(stopped, signal.SIGSTOP)
    core.handle(Tick())
    assert core._solving is not None, "not overdue yet: still waited for"
    deadline = time.monotonic() + 30
    while not own_pool.overdue(core._solving.future):
        assert time.monotonic() < deadline, "never overdue"
        time.sleep(0.1)
    commands = core.handle(Tick())
    alarms = [c for c in commands if isinstance(c, Alarm) and c.code == "dispatch-solver"]
    assert len(alarms) == 1 and "did not answer" in alarms[0].message
    assert core._solving is not None, "the run is made again at once, in the new worker"
    _back(core)
    core.handle(Tick())
    assert core.orders[order].state is not OrderState.ACCEPTED
    assert stopped not in (own_pool._pool._processes or {})


def test_the_worker_exits_when_its_controller_is_killed(tmp_path: Path) -> None:
    """A controller process SIGKILLed cannot shut its pool down: its worker notices and exits
    (within about a second) instead of living on as an orphan."""
    script = (
        "import sys, time\n"
        "from fleet.solver_pool import SolverPool\n"
        "pool = SolverPool()\n"
        "pool._pool.submit(time.sleep, 0).result()\n"
        "print(*pool._pool._processes, flush=True)\n"
        "time.sleep(600)\n"
    )
    controller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert controller.stdout is not None
        worker = int(controller.stdout.readline())
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its controller"
            time.sleep(0.1)
    finally:
        controller.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
