"""The dispatch cycle: when to run the dispatcher (here, or in the solver pool), applying its
decision (withdraw, assign, commit tours, charge, park), and containing a run that fails by
quarantining the orders it fails on."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from fleet.core.config import Solving, ordinal
from fleet.core.reports import VehicleReports
from fleet.dispatcher import AssignRequest, DispatchDecision, VehicleAvailability
from fleet.events import StopCharging
from fleet.model import Decision, OrderState, Task, TaskKind, TaskPhase, TransportOrder, Vehicle
from fleet.solving import MissingTravel
from planners.assignment import LATENESS_PER_COMPLETION, AssignmentPlan, StopKind


class Dispatching(VehicleReports):
    """Runs `fleet.dispatcher.Dispatcher` and applies its decisions to the record."""

    def _dispatch(self, run: Callable[[], None]) -> None:
        started = self._stopwatch()
        try:
            run()
            if self.dispatch_problem is not None:
                self._alarm("dispatch-recovered", "dispatching works again")
            self.dispatch_problem = None
        except Exception as exc:  # contained: one poison order or bug must not stop every dispatch
            self._dispatch_failed(exc)
        finally:
            self.stats.dispatch_s += self._stopwatch() - started

    def _dispatch_failed(self, exc: Exception) -> None:
        """A run raised: each order it could have decided on is solved alone to find the ones that
        make it fail. Those are quarantined (left out of every run, with an alarm naming them and
        why) until an operator changes or cancels them; the others are dispatched at the next run.
        When no single order is at fault, the run is tried again after `redispatch_s` and the
        failure stands in `dispatch_problem` (readiness and health report it)."""
        self._solving = None
        now = self.clock.now()
        fleet, _ = self._fleet_now()
        found = []
        for order in self._dispatchable():
            if order.state not in (OrderState.ACCEPTED, OrderState.ASSIGNED):
                continue
            try:
                self.dispatcher.probe(order, fleet, now)
            except Exception as poison:
                found.append(order.id)
                self.quarantine(order.id, f"{type(poison).__name__}: {poison}")
        if found:
            self.dispatch_problem = None
            self._dispatch_wanted = True
            return
        problem = f"dispatching fails: {type(exc).__name__}: {exc}"
        if problem != self.dispatch_problem:
            self._alarm("dispatch-failed", f"{problem}; tried again in {self.config.redispatch_s:.0f} s")
        self.dispatch_problem = problem

    def quarantine(self, order_id: str, why: str) -> None:
        """Keep an open order out of dispatching (the dispatcher fails on it): it waits, says why,
        and raises one alarm; `set_priority` (a change) releases it, `cancel_order` ends it."""
        order = self.orders[order_id]
        self.quarantined[order_id] = why
        if order.state is OrderState.ASSIGNED and order.vehicle_id in self.vehicles:
            v = self.vehicles[order.vehicle_id]
            self._put_vehicle(replace(v, stops=tuple(s for s in v.stops if s.order_id != order_id)))
            order = self._move(order, OrderState.ACCEPTED, reason="withdrawn: quarantined")
        self._put_order(replace(order, reason=f"quarantined: the dispatcher fails on it ({why})"))
        self._alarm(
            "order-quarantined",
            f"order {order_id} is held out of dispatching: the dispatcher fails on it ({why}); change or cancel it",
            order_id=order_id,
        )

    def _dispatchable(self) -> list[TransportOrder]:
        return [o for o in self.orders.values() if o.id not in self.quarantined]

    def _fleet_now(self) -> tuple[list[VehicleAvailability], frozenset[str]]:
        placed = [v for v in self.vehicles.values() if v.placed]
        occupied = frozenset(v.node for v in placed if v.task is None or v.task.kind is not TaskKind.PARK)
        return [self._availability(v) for v in placed], occupied

    def _dispatch_now(self) -> None:
        if self._solving is not None:
            self._dispatch_wanted = True  # the next run follows once this one is back
            return
        now = self.clock.now()
        self._last_dispatch = now
        self._dispatch_wanted = False
        self.stats.dispatch_runs += 1
        fleet, occupied = self._fleet_now()
        d, orders = self.dispatcher, self._dispatchable()
        if self._pool is None or self.fleet_paused or d.config.solver == "greedy":
            self._apply_decision(d.dispatch(orders, fleet, occupied, self.fleet_paused, now))
            return
        request = d.prepare(orders, d.admitted(fleet, orders), now)
        if request is None:
            self._apply_decision(d.decide(None, None, fleet, occupied))
            return
        try:
            future = self._pool.submit(self._graph_version, self.graph.travel_time, request, d.config)
        except Exception as exc:  # cannot reach the pool at all: this run is solved here
            self._solver_failed(exc)
            self._apply_decision(d.decide(request, d.solve(request), fleet, occupied))
            return
        asked = {t.id: self.orders[t.id] for t in request.tasks}
        self._solving = Solving(future, request, asked, self._graph_version, now)

    def _solver_failed(self, exc: Exception) -> None:
        self._alarm("dispatch-solver", f"the solver process failed ({exc!r}); solved in the controller instead")

    def _abandon_solve(self) -> None:
        """The worker did not answer in time (stopped, swapping, hung): it is replaced, and
        the run it had is made again at once (here, if the new worker fails too)."""
        assert self._solving is not None and self._pool is not None
        self._solving = None
        self._pool.restart()
        grace = 3 * self.config.dispatch.time_budget_s + self._pool.grace_s
        self._alarm("dispatch-solver", f"the solver process did not answer in {grace:.0f} s; restarted")
        self._dispatch_wanted = True
        self._last_dispatch = -math.inf

    def _collect_solve(self) -> None:
        """A solve from the pool is back: apply what is still true of it. Orders that changed
        meanwhile (cancelled, started, re-prioritised) and vehicles no longer able to work are
        left out of the decision, and another run follows for them; a solve made on a graph
        since changed (lanes closed or opened, a new map) is dropped."""
        solving, self._solving = self._solving, None
        assert solving is not None and self._pool is not None
        try:
            plan = solving.future.result()
        except MissingTravel:
            self._pool.forget()
            self._dispatch_wanted = True
            return
        except Exception as exc:  # the worker died or the solve raised: solved here this once
            self._solver_failed(exc)
            plan = self.dispatcher.solve(solving.request)
        if solving.graph_version != self._graph_version or self.fleet_paused:
            self._dispatch_wanted = True
            return
        changed = {oid for oid, order in solving.orders.items() if self.orders.get(oid) is not order}
        gone = {
            slot.id
            for slot in solving.request.slots
            if (v := self.vehicles.get(slot.id)) is None or not v.placed or not self.dispatcher.can_work(v)
        }
        changed |= {oid for vid in gone for oid in plan.orders_of(vid)}
        request = AssignRequest(
            tuple(t for t in solving.request.tasks if t.id not in changed),
            tuple(slot for slot in solving.request.slots if slot.id not in gone),
        )
        late = self.clock.now() - solving.asked_at  # completion times count from when it was asked
        plan = replace(
            plan,
            routes={
                vid: tuple(stop for stop in stops if stop.order_id not in changed)
                for vid, stops in plan.routes.items()
                if vid not in gone
            },
            completion_s={oid: max(0.0, c - late) for oid, c in plan.completion_s.items() if oid not in changed},
        )
        fleet, occupied = self._fleet_now()
        self._apply_decision(self.dispatcher.decide(request, plan, fleet, occupied))
        if changed or gone:
            self._dispatch_wanted = True

    def _apply_decision(self, decision: DispatchDecision) -> None:
        assigned_to = {oid: vid for vid, queue in decision.queues.items() for oid in queue}
        for oid in decision.considered:
            order = self.orders[oid]
            vid = assigned_to.get(order.id)
            if vid is None and order.state is OrderState.ASSIGNED:
                self._move(order, OrderState.ACCEPTED, reason="withdrawn by dispatcher")
            elif vid is not None and vid != order.vehicle_id:
                moved_from = order.vehicle_id if order.state is OrderState.ASSIGNED else None
                if moved_from is not None:
                    self.stats.reassignments += 1
                why, terms = self._why_assigned(order, vid, decision.queues[vid], decision.plan, moved_from)
                self._move(order, OrderState.ASSIGNED, vehicle_id=vid, reason=why, decision=terms)
        planned = decision.plan.routes if decision.plan is not None else {}
        for vid in decision.queues:
            v = self.vehicles[vid]
            # Its tour stays (its orders are no longer the dispatcher's); the plan follows it.
            stops = (*(s for s in v.stops if self._committed(vid, s)), *planned.get(vid, ()))
            if v.stops != stops:
                self._put_vehicle(replace(v, stops=stops))
            if not stops:
                continue
            if self.vehicles[vid].idle:
                self._next_task(vid)
            elif (task := self.vehicles[vid].task) is not None and task.kind is TaskKind.CHARGE and task.opportunity:
                self._interrupt_charge(vid)
        for vid, v in list(self.vehicles.items()):
            # Loads on board of a vehicle the solve left out (its battery below the reserve,
            # say) after it stopped serving them (a cancelled leg, back in service): delivered.
            if vid not in decision.queues and v.idle and v.available and not v.paused and v.stops:
                self._next_task(vid)
        self._state_unservable()
        for vid, charger_id in decision.charge.items():
            charger = next(c for c in self.map.chargers if c.id == charger_id)
            v = self.vehicles[vid]
            if not v.idle or v.stops:
                continue  # it has work since the decision was made
            opportunity = v.battery >= self.config.dispatch.charge_below
            task = Task(TaskKind.CHARGE, charger.node, place_id=charger_id, opportunity=opportunity)
            self._put_vehicle(replace(v, task=task))
            self._drive_to(vid, charger.node)
        for vid, spot_id in decision.park.items():
            if not self.vehicles[vid].idle or self.vehicles[vid].stops:
                continue
            spot = next(p for p in self.map.parking if p.id == spot_id)
            self._put_vehicle(replace(self.vehicles[vid], task=Task(TaskKind.PARK, spot.node, place_id=spot_id)))
            self._drive_to(vid, spot.node)

    def _interrupt_charge(self, vehicle_id: str) -> None:
        """An order for a vehicle charging in idle time: on its way to the charger it turns to
        the order at once; at the charger the charge is stopped first (the order starts when
        the vehicle reports the charge ended)."""
        v = self.vehicles[vehicle_id]
        assert v.task is not None
        if v.task.phase is TaskPhase.TRAVEL:
            self._put_vehicle(replace(v, task=None))
            self._next_task(vehicle_id)
        elif vehicle_id not in self._stopping_charge:
            self._stopping_charge.add(vehicle_id)
            self._outbox.append(StopCharging(vehicle_id))

    def _state_unservable(self) -> None:
        """An order no vehicle of the fleet (on the map, in service) can carry is not dropped: it
        waits, says so, and raises one alarm; when such a vehicle comes, it is dispatched."""
        types = self.map.vehicle_type_by_id
        carried = set().union(
            *(types[v.type_id].load_types for v in self.vehicles.values() if v.placed and v.in_service)
        )
        for order in self.open_orders():
            if order.state is not OrderState.ACCEPTED:
                continue
            if order.load_type in carried:
                self._unservable.discard(order.id)
            elif order.id not in self._unservable:
                self._unservable.add(order.id)
                why = f"no vehicle in the fleet can carry '{order.load_type}': it waits for one"
                self._put_order(replace(order, reason=why))
                self._alarm("unservable-order", f"order {order.id}: {why}", order_id=order.id)

    def _why_assigned(
        self,
        order: TransportOrder,
        vehicle_id: str,
        queue: tuple[str, ...],
        plan: AssignmentPlan | None,
        moved_from: str | None,
    ) -> tuple[str, Decision | None]:
        """The decision in words, for the order's history (expected finish, place in the queue,
        due time, why it moved if it did), and its terms in the plan's objective."""
        parts = [f"assigned to {vehicle_id}"]
        done_in = plan.completion_s.get(order.id) if plan is not None else None
        terms = None
        if done_in is not None:
            now = self.clock.now()
            place = queue.index(order.id) + 1 if order.id in queue else 1
            parts.append(f": done in about {done_in / 60:.1f} min, {ordinal(place)} in its queue")
            late = 0.0
            if order.due_at is not None:
                slack = order.due_at - (now + done_in)
                late = max(0.0, -slack)
                parts.append(f", {slack / 60:.1f} min before due" if slack >= 0 else f", {-slack / 60:.1f} min late")
            weight = 1 + self.dispatcher.effective_priority(order, now)
            objective = weight * (done_in + late * LATENESS_PER_COMPLETION)
            terms = Decision(
                vehicle_id, now, round(done_in, 1), place, round(late, 1), weight, round(objective, 1), moved_from
            )
        if moved_from is not None:
            margin = self.config.dispatch.keep_margin
            parts.append(f"; moved from {moved_from}: the new plan is better by more than {margin:.0%}")
        return "".join(parts), terms

    def _availability(self, v: Vehicle) -> VehicleAvailability:
        """Where and when the vehicle can start new work: after its tour (the order it serves
        now and the stops committed with it), or where its released path ends."""
        stop = self.traffic.released_end(v.id)
        released, _ = self.traffic.remaining(v.id)
        # Released lanes are driven even if closed since.
        to_stop = self.full_graph.path_time([v.node, *released]) if released else 0.0
        task = v.task
        if task is None or task.kind is not TaskKind.ORDER or task.order_id is None:
            return VehicleAvailability(v, stop, to_stop, stop)
        order = self.orders[task.order_id]
        kind = StopKind.PICKUP if order.state in (OrderState.TO_PICKUP, OrderState.LOADING) else StopKind.DROPOFF
        now = self.clock.now()

        def ready_in(o: TransportOrder, k: StopKind) -> float:
            """How long from now the load of a pick-up still takes to be ready (0 at a drop-off)."""
            return max(0.0, o.ready_at - now) if k is StopKind.PICKUP and o.ready_at is not None else 0.0

        there = order.state in (OrderState.LOADING, OrderState.UNLOADING)
        visits = [(self._station(order, kind), there, 0.0 if there else ready_in(order, kind))]
        for s in v.stops:
            if not self._committed(v.id, s):
                break  # the tour ends where the dispatcher's plan begins
            o = self.orders[s.order_id]
            visits.append((self._station(o, s.kind), False, ready_in(o, s.kind)))
        remaining = math.inf
        # Legs that closures cut off are taken as if open (the vehicle waits at the closure):
        # the estimate stays finite.
        for g in (self.graph, self.full_graph):
            remaining, at = 0.0, v.node
            for station, here, ready in visits:
                remaining = max(remaining + (0.0 if here else g.time(at, station.node)), ready)
                remaining += station.service_time_s
                at = station.node
            if math.isfinite(remaining):
                break
        return VehicleAvailability(v, visits[-1][0].node, remaining, stop)
