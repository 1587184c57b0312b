"""The simulation shell: runs the controller core against simulated vehicles and PLC demand.

Time is a `SimClock` advanced in fixed steps as fast as the CPU allows; given the same
configuration and seed, two runs produce identical KPIs. Each step: demand calls go to the core
as orders, vehicles move and report events, the core's commands go back to the vehicles, and
the collision oracle checks the world.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from fleet.clock import SimClock
from fleet.core import Controller, ControllerConfig, OrderRejected
from fleet.dispatcher import DispatchConfig
from fleet.events import Command, Event, Tick
from fleet.kpis import lead_times, summarise_lead_times
from fleet.model import OrderState, TaskKind
from fleet.vda5050.gateway import Bus
from fleet.vda5050.master import MasterConfig, MasterControl
from maps import FacilityMap
from sim.cells import CellBehaviour, SimulatedCells
from sim.demand import DemandGenerator
from sim.faults import DELAYS, Fault, FaultInjector, FaultKind
from sim.fleets import DirectFleet, SimFleet, VdaFleet
from sim.kpi import KpiReport
from sim.oracle import CollisionOracle
from sim.vda_vehicle import BEHAVIOURS
from sim.vehicle import SimVehicle

if TYPE_CHECKING:
    from fleet.solver_pool import SolverPool

STUCK_AFTER_S = 15 * 60


@dataclass(frozen=True, slots=True)
class SimConfig:
    vehicles: int = 12
    hours: float = 8.0
    seed: int = 1
    step_s: float = 0.5
    orders_per_hour: float | None = None  # default: 8 per vehicle and hour
    state_report_s: float = 5.0
    solution_limit: int = 200  # bounds solver work per dispatch so runs are reproducible
    solver_time_budget_s: float = 5.0
    protocol: str = "direct"  # "direct": commands straight to the vehicles; "vda5050": through VDA 5050 messages
    vda_vehicles: str = "spec"  # VDA 5050 vehicles as the specification reads, or "vendor": as a vendor's behaved
    offline_grace_s: float = 30.0
    faults_per_vehicle_hour: float = 0.0  # random slow-downs, pauses and stops (sim/faults.py)
    planned_traffic: bool = True  # False: vehicles only claim (ControllerConfig.planned_traffic)
    dispatcher: str = "ortools"  # or "greedy": nearest free vehicle (DispatchConfig.solver)
    opportunity_below: float = 0.0  # DispatchConfig.opportunity_below: idle vehicles below it charge (0: off)
    max_working_vehicles: int | None = None  # DispatchConfig.max_working_vehicles (None: no limit)
    cells: tuple[str, ...] = ()  # stations served by a simulated robot cell (sim/cells.py)
    cell_transfer_s: float = 20.0
    cell_failure_rate: float = 0.0

    @property
    def demand_rate(self) -> float:
        return self.orders_per_hour if self.orders_per_hour is not None else 8.0 * self.vehicles


def simulation_controller_config(cfg: SimConfig) -> ControllerConfig:
    return ControllerConfig(
        dispatch=DispatchConfig(
            time_budget_s=cfg.solver_time_budget_s,
            solution_limit=cfg.solution_limit,
            solver=cfg.dispatcher,
            opportunity_below=cfg.opportunity_below,
            max_working_vehicles=cfg.max_working_vehicles,
        ),
        offline_grace_s=cfg.offline_grace_s,
        planned_traffic=cfg.planned_traffic,
        keep_ended_s=None,  # the shift report counts every order
    )


@dataclass
class Simulation:
    """One simulated plant: a controller core, its vehicles, demand and the oracle."""

    fmap: FacilityMap
    config: SimConfig = field(default_factory=SimConfig)
    demand_enabled: bool = True
    start_time: float = 0.0  # the clock's reading at the start (the live demo starts at wall time)
    listeners: list[Callable[[list[Command]], None]] = field(default_factory=list)
    bus: Bus | None = None  # VDA 5050 transport; None: the in-process bus
    master_config: MasterConfig | None = None  # VDA 5050 master settings (pre-registered vehicles, ...)
    stopwatch: Callable[[], float] | None = None  # compute time for the metrics (the live demo); None: not timed
    solver_pool: SolverPool | None = None  # dispatch solves in another process (the live demo); None: in the step

    def __post_init__(self) -> None:
        self.clock = SimClock(self.start_time)
        self.controller = Controller(
            self.fmap,
            self.clock,
            simulation_controller_config(self.config),
            stopwatch=self.stopwatch,
            solver_pool=self.solver_pool,
        )
        self.demand = DemandGenerator(self.fmap, self.config.demand_rate, self.config.seed + 1, self.start_time)
        self.fleet = self._make_fleet()
        self.oracle = CollisionOracle()
        # Vendor-like vehicles also restart and have calls withdrawn as they drive (sim/faults.py).
        kinds = (*DELAYS, FaultKind.RESTART, FaultKind.WITHDRAW) if self.config.vda_vehicles == "vendor" else DELAYS
        self.faults = FaultInjector(self.config.faults_per_vehicle_hour, self.config.seed + 2, self.start_time, kinds)
        self.rejected = 0
        self.busy_vehicle_seconds = 0.0
        self.waiting_seconds: dict[str, float] = {}  # vehicle-seconds stopped, by what was in the way
        unknown = [s for s in self.config.cells if s not in self.fmap.station_by_id]
        if unknown:
            raise ValueError(f"cells at stations not on the map: {', '.join(unknown)}")
        behaviour = CellBehaviour(self.config.cell_transfer_s, self.config.cell_failure_rate)
        self.cells = (
            SimulatedCells(list(self.config.cells), behaviour, self.config.seed + 3) if self.config.cells else None
        )
        self._feed(self.fleet.start(self.start_time))
        self._apply(self.controller.take_commands())

    def _make_fleet(self) -> SimFleet:
        n, seed = self.config.vehicles, self.config.seed
        behaviour = BEHAVIOURS.get(self.config.vda_vehicles)
        if behaviour is None:
            raise ValueError(f"unknown VDA 5050 vehicles '{self.config.vda_vehicles}' ({', '.join(BEHAVIOURS)})")
        if self.config.protocol == "vda5050":
            master = MasterControl(self.fmap, self.master_config)
            return VdaFleet(self.fmap, self.controller, n, seed, master=master, bus=self.bus, behaviour=behaviour)
        if self.config.vda_vehicles != "spec":
            raise ValueError(f"'{self.config.vda_vehicles}' vehicles speak VDA 5050: use the vda5050 protocol")
        if self.config.protocol == "direct":
            return DirectFleet(self.fmap, self.controller, n, seed, self.config.state_report_s)
        raise ValueError(f"unknown protocol '{self.config.protocol}' (direct or vda5050)")

    def use_map(self, fmap: FacilityMap) -> None:
        """The controller activated a new map: the simulated world follows (vehicles stand still
        then, so they stay where they are)."""
        self.fmap = fmap
        self.demand = DemandGenerator(fmap, self.config.demand_rate, self.config.seed + 1, self.now)
        for body in self.fleet.bodies:
            body.use_map(fmap)
        if isinstance(self.fleet, VdaFleet):
            self.fleet.master.use_map(fmap)
            for v in self.fleet.vehicles:
                v.map = fmap

    @property
    def vehicles(self) -> list[SimVehicle]:
        """The kinematic bodies of the vehicles, whatever protocol drives them."""
        return self.fleet.bodies

    @property
    def now(self) -> float:
        return self.clock.now()

    @property
    def elapsed(self) -> float:
        return self.clock.now() - self.start_time

    def step(self) -> None:
        dt = self.config.step_s
        self.clock.advance(dt)
        now = self.clock.now()
        if self.demand_enabled:
            for call in self.demand.calls_until(now):
                try:
                    self.controller.submit_order(call.pickup, call.dropoff, call.load_type, call.priority)
                except OrderRejected:
                    self.rejected += 1
        for fault in self.faults.step(now, self.fleet.bodies):
            self._instant_fault(fault, now)
        self._feed(self.fleet.step(dt, now))
        if self.cells is not None:
            self._feed(self.cells.step(now))
        self._feed([Tick()])
        self.oracle.check(now, self.vehicles, self.controller.traffic)
        busy = sum(1 for cv in self.controller.vehicles.values() if cv.task and cv.task.kind is TaskKind.ORDER)
        self.busy_vehicle_seconds += busy * dt
        for cause in self.controller.wait_causes().values():
            self.waiting_seconds[cause] = self.waiting_seconds.get(cause, 0.0) + dt

    def _instant_fault(self, fault: Fault, now: float) -> None:
        """A restart of the vehicle (skipped on a lane: it restarts standing at a node), or a
        call withdrawn: the order of the first vehicle from this one on, in fleet order, that
        drives to its pick-up (skipped if none does)."""
        if fault.kind is FaultKind.RESTART:
            if isinstance(self.fleet, VdaFleet) and self.fleet.restart_vehicle(fault.vehicle_id, now):
                self.faults.carried_out(fault)
            return
        ids = sorted(self.controller.vehicles)
        start = ids.index(fault.vehicle_id)
        for vid in ids[start:] + ids[:start]:
            task = self.controller.vehicles[vid].task
            order = self.controller.orders.get(task.order_id) if task and task.order_id else None
            if order is not None and order.state is OrderState.TO_PICKUP:
                # Its commands leave with those of the next events.
                self.controller.cancel_order(order.id, "withdrawn by the line")
                self.faults.carried_out(replace(fault, vehicle_id=vid))
                return

    def run_for(self, seconds: float, on_step: Callable[[float], None] | None = None) -> None:
        """Advance `seconds` of simulated time; `on_step` gets the elapsed time after each step."""
        end = self.elapsed + seconds
        while self.elapsed + 1e-9 < end:
            self.step()
            if on_step is not None:
                on_step(self.elapsed)

    def _feed(self, events: list[Event]) -> None:
        for event in events:
            self._apply(self.controller.handle(event))

    def _apply(self, commands: list[Command]) -> None:
        for listener in self.listeners:
            listener(commands)
        if self.cells is not None:  # picks and drops at cell stations are the cells' to do
            commands = self.cells.apply(commands, self.clock.now())
        self.fleet.apply(commands, self.clock.now())

    def report(self, wall_seconds: float) -> KpiReport:
        orders = list(self.controller.orders.values())
        hours = self.elapsed / 3600
        finished = [o for o in orders if o.state is OrderState.FINISHED]
        open_orders = [o for o in orders if not o.state.terminal]
        mean, p95 = summarise_lead_times(lead_times(finished))
        n = len(self.vehicles)
        return KpiReport(
            vehicles=n,
            simulated_hours=round(hours, 4),
            orders_accepted=len(orders),
            orders_rejected=self.rejected,
            orders_finished=len(finished),
            orders_failed=sum(1 for o in orders if o.state is OrderState.FAILED),
            orders_open=len(open_orders),
            orders_stuck=sum(1 for o in open_orders if self.clock.now() - o.created_at > STUCK_AFTER_S),
            finished_per_hour=round(len(finished) / hours, 2) if hours > 0 else 0.0,
            lead_time_mean_s=round(mean, 2),
            lead_time_p95_s=round(p95, 2),
            utilisation=round(self.busy_vehicle_seconds / (n * self.elapsed), 4) if n and hours else 0.0,
            distance_km=round(sum(v.odometer for v in self.vehicles) / 1000, 3),
            collisions=len(self.oracle.collisions),
            claim_violations=len(self.oracle.claim_violations),
            reassignments=self.controller.stats.reassignments,
            routes_planned=self.controller.stats.routes_planned,
            routes_unplanned=self.controller.stats.routes_unplanned,
            deadlocks=self.controller.stats.deadlocks,
            deadlocks_resolved=self.controller.stats.deadlocks_resolved,
            deadlocks_unresolved=self.controller.stats.deadlocks_unresolved,
            waiting_s_by_cause={k: round(v, 1) for k, v in sorted(self.waiting_seconds.items())},
            wall_seconds=round(wall_seconds, 3),
        )


def run_simulation(
    fmap: FacilityMap,
    config: SimConfig,
    on_progress: Callable[[float], None] | None = None,
    stop_on_deadlock: bool = False,
) -> tuple[KpiReport, Simulation]:
    """Simulate `config.hours` and return the KPI report with the finished simulation.

    With `stop_on_deadlock` the run ends at the first circular wait that could not be broken
    (the report's `simulated_hours` then says how far it got): past a gridlock the figures mean
    nothing.
    """
    sim = Simulation(fmap, config)
    started = time.perf_counter()
    end = config.hours * 3600
    report_every = max(60.0, end / 200)
    next_report = report_every

    def progress(now: float) -> None:
        nonlocal next_report
        if on_progress is not None and now >= next_report:
            next_report += report_every
            on_progress(min(now, end))

    if stop_on_deadlock:
        while sim.elapsed + 1e-9 < end and sim.controller.stats.deadlocks_unresolved == 0:
            sim.run_for(60.0, progress)
    else:
        sim.run_for(end, progress)
    if on_progress is not None:
        on_progress(end)
    return sim.report(time.perf_counter() - started), sim


__all__ = ["SimConfig", "Simulation", "run_simulation"]
