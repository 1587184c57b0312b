"""The simulation shell: runs the controller core against simulated vehicles and PLC demand.

Time is a `SimClock` advanced in fixed steps as fast as the CPU allows; given the same
configuration and seed, two runs produce identical KPIs. Each step: demand calls go to the core
as orders, vehicles move and report events, the core's commands go back to the vehicles, and
the collision oracle checks the world.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fleet.clock import SimClock
from fleet.core import Controller, ControllerConfig, OrderRejected
from fleet.dispatcher import DispatchConfig
from fleet.events import Command, DriveNodes, Event, StartAction, StateReport, Tick
from fleet.model import OrderState, TaskKind
from maps import FacilityMap
from planners.graph import lane_speeds
from sim.demand import DemandGenerator
from sim.kpi import KpiReport, lead_times, summarise_lead_times
from sim.oracle import CollisionOracle
from sim.vehicle import LaneGeometry, SimVehicle

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

    @property
    def demand_rate(self) -> float:
        return self.orders_per_hour if self.orders_per_hour is not None else 8.0 * self.vehicles


def simulation_controller_config(cfg: SimConfig) -> ControllerConfig:
    return ControllerConfig(
        dispatch=DispatchConfig(time_budget_s=cfg.solver_time_budget_s, solution_limit=cfg.solution_limit)
    )


def lane_geometry(fmap: FacilityMap, top_speed: float) -> dict[tuple[str, str], LaneGeometry]:
    nodes = fmap.node_by_id
    speeds = lane_speeds(fmap, top_speed)
    out: dict[tuple[str, str], LaneGeometry] = {}
    for lane in fmap.lanes:
        a, b = nodes[lane.start], nodes[lane.end]
        out[(a.id, b.id)] = LaneGeometry(a.x, a.y, b.x, b.y, lane.length, speeds[lane.id])
        if lane.two_way:
            out[(b.id, a.id)] = LaneGeometry(b.x, b.y, a.x, a.y, lane.length, speeds[lane.id])
    return out


def start_nodes(fmap: FacilityMap, count: int) -> list[str]:
    """Where vehicles start: parking spots, then chargers, then station queue bays."""
    candidates = [p.node for p in fmap.parking] + [c.node for c in fmap.chargers]
    bays = [n.id for n in fmap.nodes if n.id.endswith(".Q")]
    candidates += [n for n in bays if n not in candidates]
    if count > len(candidates):
        raise ValueError(f"map {fmap.name} has room to start {len(candidates)} vehicles, not {count}")
    return candidates[:count]


@dataclass
class Simulation:
    """One simulated plant: a controller core, its vehicles, demand and the oracle."""

    fmap: FacilityMap
    config: SimConfig = field(default_factory=SimConfig)
    demand_enabled: bool = True
    start_time: float = 0.0  # the clock's reading at the start (the live demo starts at wall time)
    listeners: list[Callable[[list[Command]], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = SimClock(self.start_time)
        self.controller = Controller(self.fmap, self.clock, simulation_controller_config(self.config))
        rng = np.random.default_rng(self.config.seed)
        self.demand = DemandGenerator(self.fmap, self.config.demand_rate, self.config.seed + 1, self.start_time)
        vtype = self.fmap.vehicle_types[0]
        geometry = lane_geometry(self.fmap, vtype.max_speed)
        self.vehicles: list[SimVehicle] = []
        for k, node in enumerate(start_nodes(self.fmap, self.config.vehicles), start=1):
            vid = f"AGV-{k:02d}"
            battery = float(rng.uniform(0.5, 1.0))
            self.vehicles.append(SimVehicle(vid, vtype, self.fmap, geometry, node, battery))
            self.controller.add_vehicle(vid, vtype.id, node, battery)
        self._by_id = {v.id: v for v in self.vehicles}
        self.oracle = CollisionOracle()
        self.rejected = 0
        self.busy_vehicle_seconds = 0.0
        self._next_report = self.start_time
        self._apply(self.controller.take_commands())

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
        for v in self.vehicles:
            if v.busy:
                self._feed(v.step(dt))
        if now >= self._next_report:
            self._next_report = now + self.config.state_report_s
            for v in self.vehicles:
                self._feed([StateReport(v.id, v.x, v.y, v.heading, v.battery)])
        self._feed([Tick()])
        self.oracle.check(now, self.vehicles, self.controller.traffic)
        busy = sum(1 for cv in self.controller.vehicles.values() if cv.task and cv.task.kind is TaskKind.ORDER)
        self.busy_vehicle_seconds += busy * dt

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
        for cmd in commands:
            if isinstance(cmd, DriveNodes):
                self._by_id[cmd.vehicle_id].drive(cmd.nodes)
            elif isinstance(cmd, StartAction):
                self._by_id[cmd.vehicle_id].start_action(cmd.action, cmd.place_id, cmd.until_battery)

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
            deadlocks=self.controller.stats.deadlocks,
            wall_seconds=round(wall_seconds, 3),
        )


def run_simulation(
    fmap: FacilityMap,
    config: SimConfig,
    on_progress: Callable[[float], None] | None = None,
    stop_on_deadlock: bool = False,
) -> tuple[KpiReport, Simulation]:
    """Simulate `config.hours` and return the KPI report with the finished simulation.

    With `stop_on_deadlock` the run ends at the first detected circular wait (the report's
    `simulated_hours` then says how far it got): past a gridlock the figures mean nothing.
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
        while sim.elapsed + 1e-9 < end and sim.controller.stats.deadlocks == 0:
            sim.run_for(60.0, progress)
    else:
        sim.run_for(end, progress)
    if on_progress is not None:
        on_progress(end)
    return sim.report(time.perf_counter() - started), sim


__all__ = ["SimConfig", "Simulation", "run_simulation"]
