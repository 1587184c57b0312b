"""Dispatcher: which vehicle serves which order, and when idle vehicles charge or park.

One dispatch run is a short list of named phases over a snapshot the core prepares:
assign (OR-Tools over all orders not yet started), recharge, park. Each phase is a small pure
function; the core applies the decision. No I/O, no clock: `now` comes in the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from fleet.model import OrderState, TaskKind, TransportOrder, Vehicle
from maps import FacilityMap
from planners.assignment import (
    AssignmentPlan,
    EnergyUse,
    OrderTask,
    TravelMatrix,
    VehicleSlot,
    energy_use_for,
    greedy_plan,
    route_energy,
    solve_assignment,
)
from planners.graph import CompiledGraph


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Tuning of the dispatch cycle. `solution_limit` bounds solver work independently of the CPU
    (the simulator sets it so runs are reproducible)."""

    interval_s: float = 2.0
    time_budget_s: float = 1.0
    # Rolling horizon: each solve sees the vehicles free soonest and the most urgent orders only;
    # the rest wait for the next run. Keeps a solve well under a second at 100 vehicles.
    max_vehicles_per_solve: int = 16
    max_orders_per_solve: int = 24
    solution_limit: int | None = None
    reserve_battery: float = 0.15
    charge_below: float = 0.3
    charge_until: float = 0.9
    # Opportunity charging: an idle vehicle below this goes to charge while more than one
    # charger is free (one stays for a vehicle that must charge); an order interrupts it. 0 (the
    # default): off. At 0.8 it shortens lead times where the fleet has idle time (12 carts on the
    # plant: 298 -> 278 s) but not in a busy one (30 carts with faults: 614 -> 620 s, 5 seeds).
    opportunity_below: float = 0.0
    # A new assignment replaces the standing one only if it lowers the objective (weighted
    # completion times) by more than this fraction: no reshuffling for crumbs.
    keep_margin: float = 0.05
    # No order waits longer than this for its vehicle whatever its priority: past it, an order
    # ranks above every priority (it enters the next solve and weighs as the most urgent).
    max_wait_s: float = 1800.0
    # Admission control: at most this many vehicles work on orders at once; the others get no
    # new work and stay parked (or where they are) until the count falls. Past the traffic a
    # layout carries, more vehicles only lengthen the queues until they spill back into aisles
    # and bays and throughput collapses; bench/throughput.py finds the number. None: no limit.
    max_working_vehicles: int | None = None
    # An order whose load is ready later than this from now stays out of the solves: a vehicle
    # sent for it now would stand at the station, blocking it, for the difference.
    ready_lookahead_s: float = 300.0
    # "ortools", or "greedy": the nearest-free-vehicle baseline (for comparisons, not for plants).
    solver: str = "ortools"

    def __post_init__(self) -> None:
        if self.solver not in ("ortools", "greedy"):
            raise ValueError(f"solver: '{self.solver}' is not ortools or greedy")


STARVED_PRIORITY = 11  # above the API's highest (10)
Problem = tuple[tuple[OrderTask, ...], tuple[VehicleSlot, ...]]  # the orders and vehicles a plan was solved for


@dataclass(frozen=True, slots=True)
class AssignRequest:
    """One run's assignment problem: the orders and vehicles as the planner sees them, in the
    sequence the solver gets them (orders standing on a vehicle in its queue's order)."""

    tasks: tuple[OrderTask, ...]
    slots: tuple[VehicleSlot, ...]


def solve_request(request: AssignRequest, travel: TravelMatrix, config: DispatchConfig) -> AssignmentPlan:
    """OR-Tools on one run's problem, as the dispatcher configures it (pure: any process)."""
    return solve_assignment(
        request.tasks,
        request.slots,
        travel,
        config.time_budget_s,
        solution_limit=config.solution_limit,
        keep_margin=config.keep_margin,
    )


@dataclass(frozen=True, slots=True)
class VehicleAvailability:
    """Where and when a vehicle can start new work, as the core estimates it."""

    vehicle: Vehicle
    node: str
    available_in_s: float
    stopping_node: str  # where it stands still if given nothing new


@dataclass(frozen=True)
class DispatchDecision:
    queues: dict[str, tuple[str, ...]]  # for the vehicles considered in this run
    considered: tuple[str, ...]  # orders this run decided on; others keep their assignment
    charge: dict[str, str] = field(default_factory=dict)  # vehicle -> charger id
    park: dict[str, str] = field(default_factory=dict)  # vehicle -> parking spot id
    plan: AssignmentPlan | None = None
    problem: Problem | None = None  # what `plan` solved


class Dispatcher:
    """Runs the phases against the compiled map; one instance per controller."""

    def __init__(self, fmap: FacilityMap, graph: CompiledGraph, config: DispatchConfig) -> None:
        self._map = fmap
        self.config = config
        self._places = frozenset(p.node for p in fmap.parking) | {c.node for c in fmap.chargers}
        # Per station, its node and the nodes a lane leads from into it: where a vehicle that
        # stands still keeps everyone else from the station.
        self._approach = {
            st.id: frozenset({st.node} | {a for a, b in fmap.lane_between if b == st.node}) for st in fmap.stations
        }
        self.use_graph(graph)

    @property
    def travel_time(self) -> TravelMatrix:
        """The travel times the dispatcher plans with (graph node indices)."""
        return self._graph.travel_time

    def effective_priority(self, order: TransportOrder, now: float) -> int:
        """The order's priority, or above every priority once it has waited `max_wait_s`."""
        return STARVED_PRIORITY if now - order.waiting_since >= self.config.max_wait_s else order.priority

    def use_graph(self, graph: CompiledGraph) -> None:
        """Travel times changed (lanes closed or opened)."""
        self._graph = graph
        chargers = [graph.index[c.node] for c in self._map.chargers]
        # Without chargers there is nothing to reach: the reserve check of `can_work` is all there is.
        self._energy: dict[str, EnergyUse] = (
            {t.id: energy_use_for(t, graph.travel_time, chargers) for t in self._map.vehicle_types} if chargers else {}
        )

    def dispatch(
        self,
        orders: Sequence[TransportOrder],
        fleet: Sequence[VehicleAvailability],
        occupied_nodes: frozenset[str],
        fleet_paused: bool = False,
        now: float = 0.0,
    ) -> DispatchDecision:
        """One whole run, here and now: `prepare`, `solve`, `decide`."""
        if fleet_paused:
            return DispatchDecision({}, ())
        request = self.prepare(orders, self.admitted(fleet, orders), now)
        return self.decide(request, self.solve(request) if request else None, fleet, occupied_nodes)

    def prepare(
        self, orders: Sequence[TransportOrder], fleet: Sequence[VehicleAvailability], now: float = 0.0
    ) -> AssignRequest | None:
        """The assignment problem of this run: orders not yet started and the vehicles able to
        work that are free soonest (rolling horizon), as the planner sees them; None when there
        is nothing to decide."""
        g = self._graph
        able = [a for a in fleet if self.can_work(a.vehicle)]
        able.sort(key=lambda a: (a.available_in_s, a.vehicle.id))
        able = able[: self.config.max_vehicles_per_solve]
        chosen = {a.vehicle.id for a in able}
        soon = now + self.config.ready_lookahead_s
        pending = [
            o
            for o in orders
            if (o.state is OrderState.ACCEPTED and (o.ready_at is None or o.ready_at <= soon))
            or (o.state is OrderState.ASSIGNED and o.vehicle_id in chosen)
        ]
        urgency = {o.id: self.effective_priority(o, now) for o in pending}
        pending.sort(key=lambda o: (-urgency[o.id], o.created_at, o.id))
        pending = pending[: self.config.max_orders_per_solve]
        # Orders standing on a vehicle in its queue's sequence, so the plan as it stands is kept.
        queue_pos = {oid: k for a in able for k, oid in enumerate(a.vehicle.queue)}
        pending.sort(key=lambda o: queue_pos.get(o.id, len(queue_pos)))
        if not pending or not able:
            return None
        stations = self._map.station_by_id
        types = self._map.vehicle_type_by_id
        slots = {a.vehicle.id: self._slot(a) for a in able}
        tasks = []
        for o in pending:
            task = OrderTask(
                id=o.id,
                pickup=g.index[stations[o.pickup].node],
                dropoff=g.index[stations[o.dropoff].node],
                pickup_service_s=stations[o.pickup].service_time_s,
                dropoff_service_s=stations[o.dropoff].service_time_s,
                priority=urgency[o.id],
                due_in_s=None if o.due_at is None else max(0.0, o.due_at - now),
                ready_in_s=0.0 if o.ready_at is None else max(0.0, o.ready_at - now),
            )
            allowed = frozenset(
                a.vehicle.id
                for a in able
                if o.load_type in types[a.vehicle.type_id].load_types and self._fits(slots[a.vehicle.id], task)
            )
            tasks.append(
                replace(
                    task,
                    allowed_vehicles=None if len(allowed) == len(able) else allowed,
                    # A vehicle no longer allowed (battery, load) gives the order up: it is no plan to keep.
                    current_vehicle=o.vehicle_id
                    if o.state is OrderState.ASSIGNED and o.vehicle_id in allowed
                    else None,
                )
            )
        return AssignRequest(tuple(tasks), tuple(slots.values()))

    def solve(self, request: AssignRequest) -> AssignmentPlan:
        """The plan for `request`, by the configured solver, in this process (`fleet.solver_pool`
        runs the same in another)."""
        if self.config.solver == "greedy":
            return greedy_plan(request.tasks, request.slots, self._graph.travel_time, keep_current=True)
        return solve_request(request, self._graph.travel_time, self.config)

    def probe(self, order: TransportOrder, fleet: Sequence[VehicleAvailability], now: float) -> None:
        """Solve `order` alone, briefly (one solution): raises what a run with it would raise.
        Finds the order that makes a failing run fail, so that it alone is held back."""
        request = self.prepare([order], fleet, now)
        if request is None:
            return
        if self.config.solver == "greedy":
            greedy_plan(request.tasks, request.slots, self._graph.travel_time, keep_current=True)
            return
        solve_request(request, self._graph.travel_time, replace(self.config, time_budget_s=0.05, solution_limit=1))

    def decide(
        self,
        request: AssignRequest | None,
        plan: AssignmentPlan | None,
        fleet: Sequence[VehicleAvailability],
        occupied_nodes: frozenset[str],
    ) -> DispatchDecision:
        """The run's decision from the plan for `request` (None: nothing to assign), with the
        recharge and park phases for the fleet as it stands."""
        queues: dict[str, tuple[str, ...]] = {}
        considered: tuple[str, ...] = ()
        if request is not None and plan is not None:
            queues = {slot.id: plan.orders_of(slot.id) for slot in request.slots}
            considered = tuple(t.id for t in request.tasks)
        idle = [a for a in fleet if a.vehicle.idle and a.vehicle.available and not queues.get(a.vehicle.id)]
        charge = self.recharge(idle, fleet, occupied_nodes)
        park = self.park([a for a in idle if a.vehicle.id not in charge], fleet, occupied_nodes)
        problem = (request.tasks, request.slots) if request is not None else None
        return DispatchDecision(queues, considered, charge, park, plan, problem)

    # ---- phases ---------------------------------------------------------------------------

    def recharge(
        self, idle: Sequence[VehicleAvailability], fleet: Sequence[VehicleAvailability], occupied: frozenset[str]
    ) -> dict[str, str]:
        """Idle vehicles low on battery go to the nearest charger nobody holds or is heading to;
        then, in idle time, vehicles below `opportunity_below`, leaving one charger free."""
        taken = self._places_in_use(fleet, TaskKind.CHARGE)
        free = [c for c in self._map.chargers if c.id not in taken]
        decisions: dict[str, str] = {}
        for a in sorted(idle, key=lambda a: (a.vehicle.battery, a.vehicle.id)):
            # A charger another vehicle stands on is not free; the one this vehicle stands on is.
            usable = [c for c in free if c.node not in occupied or c.node == a.stopping_node]
            must = a.vehicle.battery < self.config.charge_below
            may = a.vehicle.battery < self.config.opportunity_below and len(usable) > 1
            if not usable or not (must or may):
                continue
            best = min(usable, key=lambda c: (self._graph.time(a.stopping_node, c.node), c.id))
            if not np.isfinite(self._graph.time(a.stopping_node, best.node)):
                continue
            decisions[a.vehicle.id] = best.id
            free.remove(best)
        return decisions

    def park(
        self, idle: Sequence[VehicleAvailability], fleet: Sequence[VehicleAvailability], occupied: frozenset[str]
    ) -> dict[str, str]:
        """Idle vehicles that are not parked go to the nearest free parking spot, so aisles and stations stay clear."""
        taken = self._places_in_use(fleet, TaskKind.PARK)
        free = [p for p in self._map.parking if p.id not in taken and p.node not in occupied]
        decisions: dict[str, str] = {}
        for a in sorted(idle, key=lambda a: a.vehicle.id):
            if a.vehicle.task is not None or not free:
                continue  # already parked or heading to a spot
            best = min(free, key=lambda p: (self._graph.time(a.stopping_node, p.node), p.id))
            if not np.isfinite(self._graph.time(a.stopping_node, best.node)):
                continue
            decisions[a.vehicle.id] = best.id
            free.remove(best)
        return decisions

    # ---- helpers --------------------------------------------------------------------------

    def _slot(self, a: VehicleAvailability) -> VehicleSlot:
        """The vehicle as the planner sees it. Energy: what the battery holds above the reserve,
        less what the work it has yet to finish takes (bounded by driving all that time)."""
        node = self._graph.index[a.node]
        vtype = self._map.vehicle_type_by_id[a.vehicle.type_id]
        use = self._energy.get(a.vehicle.type_id)
        if use is None:
            return VehicleSlot(a.vehicle.id, node, a.available_in_s, vtype.load_capacity)
        above_reserve = (a.vehicle.battery - self.config.reserve_battery) * vtype.battery_capacity_wh
        energy_wh = above_reserve - use.driving(a.available_in_s)
        return VehicleSlot(a.vehicle.id, node, a.available_in_s, vtype.load_capacity, energy_wh, use)

    def _fits(self, slot: VehicleSlot, task: OrderTask) -> bool:
        """Whether the vehicle, once free, can serve the order alone and still reach a charger
        with its reserve (the solver then checks its whole queue the same way)."""
        need = route_energy(slot, task.stops, [task], self._graph.travel_time)
        return bool(np.isfinite(self._graph.travel_time[slot.node, task.pickup])) and need <= slot.energy_wh

    def admitted(
        self, fleet: Sequence[VehicleAvailability], orders: Sequence[TransportOrder]
    ) -> list[VehicleAvailability]:
        """The vehicles that may get orders under `max_working_vehicles`: all that work now, and
        idle ones up to the limit, in this order: those standing on or next to a station that
        an open order picks up from or drops at, then the others standing where vehicles pass,
        then those on a parking spot or charger; each group in the fleet's order (the same ones
        each time: a stable working set, the others stay where they are). A cart held back on a
        station's approach blocks every order to that station, one in an aisle whoever must
        pass it, a parked one nobody. Warehouse, 30 min, seeds 1-3, finished/h held to 30 with
        100 carts: 252 (236-266) in this order, 243 (230-256) without the first group, 199
        (194-204) in fleet order alone; 75 carts 285 (266-306), 254 and 203 (other limits and
        seeds, and one seed that fell to 140/h, in the README's throughput study). Measured against
        idle ones taken soonest-free first, on the warehouse with 75 carts and a limit of 45
        (30 min, seed 1): 123 orders finished against 14."""
        cap = self.config.max_working_vehicles
        if cap is None or len(fleet) <= cap:
            return list(fleet)
        busy: list[VehicleAvailability] = []
        idle: list[VehicleAvailability] = []
        for a in fleet:
            (busy if working(a.vehicle) else idle).append(a)
        needed = {self._approach[s] for o in orders if not o.state.terminal for s in (o.pickup, o.dropoff)}
        in_the_way = frozenset().union(*needed)
        idle.sort(key=lambda a: (a.stopping_node in self._places, a.stopping_node not in in_the_way))  # stable
        return busy + idle[: max(0, cap - len(busy))]

    def can_work(self, v: Vehicle) -> bool:
        """Whether the vehicle may be given orders now (available, not paused, above its reserve,
        not charging but in idle time)."""
        if not v.available or v.paused or v.battery < self.config.reserve_battery:
            return False
        if v.task is not None and v.task.kind is TaskKind.CHARGE:
            return v.task.opportunity and v.battery >= self.config.charge_below  # an order may interrupt it
        return v.task is None or v.task.kind in (TaskKind.ORDER, TaskKind.PARK)

    @staticmethod
    def _places_in_use(fleet: Sequence[VehicleAvailability], kind: TaskKind) -> set[str]:
        return {
            a.vehicle.task.place_id
            for a in fleet
            if a.vehicle.task is not None and a.vehicle.task.kind is kind and a.vehicle.task.place_id is not None
        }


def working(v: Vehicle) -> bool:
    """Whether the vehicle works on orders: one under way, or more queued (what
    `DispatchConfig.max_working_vehicles` counts)."""
    return bool(v.queue) or (v.task is not None and v.task.kind is TaskKind.ORDER)
