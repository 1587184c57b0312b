"""Traffic control: routes planned in time and released as the claims allow, closures of lanes
and zones, the pause sent to vehicles, and why a vehicle waits (the core's read side of traffic)."""

from __future__ import annotations

import math
from dataclasses import replace

from fleet.core.config import OrderRejected
from fleet.core.record import Record
from fleet.events import DriveNodes, PauseVehicle
from fleet.model import TaskKind, TaskPhase, Vehicle
from fleet.traffic import lane_resource
from planners.graph import NoPathError, compile_map
from planners.precedence import Walk, project
from planners.sipp import Plan


class Scheduling(Record):
    """The scheduler side of the core: `_set_route` plans a vehicle's route, `_release` sends what the
    claims allow, `_release_waiting_on` wakes whoever waited on a vehicle; closures re-route."""

    def close_lane(self, lane_id: str, closed: bool = True) -> None:
        """Operator closes (or opens) a lane at run time. New routes avoid it at once; vehicles
        whose unreleased route crosses it are re-routed from where their released path ends; a
        vehicle already released onto it drives through, and the lane closes behind it."""
        if lane_id not in self.map.lane_by_id:
            raise OrderRejected("lane_id", f"unknown lane '{lane_id}'")
        self._set_closure("lane", lane_id, self.closed_lanes, closed)

    def close_zone(self, zone_id: str, closed: bool = True) -> None:
        """Operator closes (or opens) a zone, say a manual forklift area or a blocked fire door:
        every lane that crosses it closes as `close_lane` closes one. Lanes an operator closed by
        themselves stay closed when the zone opens."""
        if zone_id not in self._zone_lanes:
            raise OrderRejected("zone_id", f"unknown zone '{zone_id}'")
        self._set_closure("zone", zone_id, self.closed_zones, closed)

    def _set_closure(self, kind: str, ident: str, closed_set: set[str], closed: bool) -> None:
        if closed:
            closed_set.add(ident)
        else:
            closed_set.discard(ident)
        state = "closed" if closed else "opened"
        self._alarm(f"{kind}-{state}", f"{kind} {ident} {state}")
        self._apply_closures()

    def _apply_closures(self) -> None:
        wanted = set(self.closed_lanes).union(*(self._zone_lanes[z] for z in self.closed_zones))
        closing, opening = wanted - self._closed_now, self._closed_now - wanted
        self._closed_now = wanted
        if not wanted:
            for vehicle_id in sorted(self.blocked_by_closure):
                self._unblocked(vehicle_id, f"{vehicle_id}: every closure lifted")
        lanes = self.map.lane_by_id
        resources = {lid: lane_resource(lanes[lid].start, lanes[lid].end) for lid in closing | opening}
        for lid in sorted(closing):
            self.traffic.close(resources[lid])
        for lid in sorted(opening):
            self.traffic.reopen(resources[lid])
        self.graph = compile_map(self.map, closed_lanes=frozenset(wanted))
        self.dispatcher.use_graph(self.graph)
        self._graph_version += 1
        rerouted: set[str] = set()
        for lid in sorted(closing):
            for vid in self.traffic.planned_through(resources[lid]):
                if vid not in rerouted:
                    rerouted.add(vid)
                    self._reroute(vid)
        opened = {resources[lid] for lid in opening}
        for vid, reason in list(self.traffic.waiting.items()):
            if reason.resource in opened:
                self._release(vid)
        self._dispatch_wanted = True

    def _reroute(self, vehicle_id: str) -> None:
        self._set_route(vehicle_id, self.traffic.route_goal(vehicle_id))
        self._release(vehicle_id)

    def _set_route(self, vehicle_id: str, goal: str) -> None:
        """Route the vehicle from its released end to `goal`: planned in time around what the
        others are expected to do when that works (it then takes its turns), else the fastest
        path (it only claims)."""
        start = self.traffic.released_end(vehicle_id)
        now = self.clock.now()
        self._planned_at[vehicle_id] = now
        plan = None
        fastest: list[str] | None = None
        if self.config.planned_traffic and start != goal:
            self.traffic.drop_turns(vehicle_id)
            walks = {o: self._walk(o, now) for o, ov in self.vehicles.items() if ov.placed}
            mine = walks[vehicle_id]
            claimed = {o: w.claimed for o, w in walks.items()}
            stay = self._stay(self.vehicles[vehicle_id], goal)
            heading = self._heading_at_end(vehicle_id)
            turns = self.traffic.turn_order()
            projections: dict[float, tuple[dict[str, Plan], float]] = {}

            def attempt(stay_at_end: float, no_through: frozenset[str]) -> Plan | None:
                """SIPP around the others as projected with this vehicle standing at its released
                end for `stay_at_end` seconds once there (each projection made once)."""
                if stay_at_end not in projections:
                    walks[vehicle_id] = replace(mine, nodes=mine.nodes[: mine.claimed + 1], stay=stay_at_end)
                    expected = project(walks, turns, self.full_graph.edge_seconds, now)
                    projections[stay_at_end] = expected, expected.pop(vehicle_id)[-1].arrive
                others, start_time = projections[stay_at_end]
                started = self._stopwatch()
                found = self.router.plan(
                    self.graph, start, goal, start_time, others, claimed, now, no_through, stay, heading
                )
                self.stats.planning_s += self._stopwatch() - started
                return found

            # First around the others as they move while this vehicle stands at its released end
            # for good (what they will do if it gets no plan); if that fails, as they move once it
            # has left that end: whoever waits for its node then passes after it, which makes a
            # head-on meeting or a chain of waits through its node plannable. Both projections
            # honour the turns already fixed, so either plan slots in without closing a cycle.
            basis = math.inf
            plan = attempt(math.inf, self._no_through)
            if plan is None:
                plan, basis = attempt(0.0, self._no_through), 0.0
            if plan is None:
                # A parking spot or charger that no way round avoids (the vehicle stands in a bay
                # whose only exit runs through it) may be driven through; others not.
                fastest = self._path(vehicle_id, start, goal)
                relaxed = self._no_through.difference(fastest[1:-1])
                if relaxed != self._no_through:
                    plan, basis = attempt(math.inf, relaxed), math.inf
            self.traffic.retime_turns(projections[basis if plan is not None else math.inf][0])
            self.stats.routes_planned += 1
        if plan is not None:
            self.traffic.set_route(vehicle_id, [p.node for p in plan], [a.depart for a in plan[:-1]])
        else:
            self.stats.routes_unplanned += self.config.planned_traffic and start != goal
            self.traffic.set_route(vehicle_id, fastest or self._path(vehicle_id, start, goal))

    def _heading_at_end(self, vehicle_id: str) -> float:
        """Where the vehicle will face at the end of its released path: along its last lane, or
        as it stands (a vehicle that turns on the spot turns from there before it leaves)."""
        v = self.vehicles[vehicle_id]
        released, _ = self.traffic.remaining(vehicle_id)
        if not released:
            return v.heading
        return self.full_graph.heading(released[-2] if len(released) > 1 else v.node, released[-1])

    def _walk(self, vehicle_id: str, now: float) -> Walk:
        """What the vehicle is to drive from where it stands, for projecting traffic: it cannot
        move while paused or unable; at a station for a pick or drop it leaves after the service."""
        v = self.vehicles[vehicle_id]
        nodes = tuple(self.traffic.route_nodes(vehicle_id))
        released, _ = self.traffic.remaining(vehicle_id)
        ready = now if self.can_move(v) else math.inf
        return Walk(nodes, len(released), ready, self._stay(v, nodes[-1]))

    def _stay(self, v: Vehicle, goal: str) -> float:
        """How long the vehicle is expected to stand at the end of its route: a station's
        service time for a pick or drop, `idle_stay_s` on a through node with no route onward,
        for good otherwise (parking, charging)."""
        task = v.task
        if task is not None and task.kind is TaskKind.ORDER and task.goal == goal:
            return self._service_at.get(goal, math.inf) + 2 * self.config.clear_s
        if goal not in self._no_through and (task is None or task.goal != goal):
            # Without work, or given work and not routed yet, on a node others drive through: it
            # leaves soon (its route comes, or it is moved aside for whoever waits for it).
            # Projected as standing for good, it would make every route through its node
            # unplannable, and at density most vehicles would drive on claims alone.
            return self.config.idle_stay_s
        return math.inf

    def can_move(self, v: Vehicle) -> bool:
        """Whether the vehicle drives when told to: not paused, online, automatic, no fatal error."""
        fatal = any(e.startswith("FATAL") for e in v.errors)
        return not (v.paused or self.fleet_paused) and v.online and v.automatic and not fatal

    def _path(self, vehicle_id: str, start: str, goal: str) -> list[str]:
        """Fastest path on the open lanes that does not drive through a parking spot or charger
        (a cart standing there would block it); when closures cut the goal off, the path over the
        closed lane, so the vehicle waits at the closure (and says so) until an operator opens it."""
        try:
            path = self.graph.shortest_path(start, goal)
        except NoPathError:
            if vehicle_id not in self.blocked_by_closure:  # one alarm while it lasts, not one per try
                self.blocked_by_closure.add(vehicle_id)
                self._alarm(
                    "blocked-by-closure", f"{vehicle_id} cannot reach {goal} while lanes are closed", vehicle_id
                )
            return self.full_graph.shortest_path(start, goal)
        self._unblocked(vehicle_id, f"{vehicle_id} has a way to {goal} again")
        if not any(n in self._no_through for n in path[1:-1]):
            return path

        def through_a_bay(a: str, b: str) -> bool:
            return b in self._no_through and b != goal

        # A bay that is a shortcut: the fastest path that keeps out of them, if there is one.
        around = next((p for p in self.graph.paths_from(start, through_a_bay) if p[-1] == goal), None)
        return around if around is not None else path

    def _unblocked(self, vehicle_id: str, why: str) -> None:
        if vehicle_id in self.blocked_by_closure:
            self.blocked_by_closure.discard(vehicle_id)
            self._alarm("blocked-by-closure-cleared", why, vehicle_id)

    def _sync_pause(self, vehicle_id: str) -> None:
        if not self.vehicles[vehicle_id].placed:
            return  # told when it is placed
        held = self.fleet_paused or self.vehicles[vehicle_id].paused
        if self._pause_sent.get(vehicle_id, False) != held:
            self._pause_sent[vehicle_id] = held
            self._outbox.append(PauseVehicle(vehicle_id, held))

    def _wake_turn_waiters(self) -> None:
        """Vehicles gave up their turns (re-routed, stopped): whoever waited for them may go."""
        while self.traffic.turns_dropped:
            self._release_waiting_on(self.traffic.turns_dropped.pop())

    def _release_waiting_on(self, vehicle_id: str) -> None:
        """`vehicle_id` freed something: whoever waited on it may move on."""
        for other, reason in list(self.traffic.waiting.items()):
            if reason.holder == vehicle_id:
                self._release(other)

    def _release(self, vehicle_id: str) -> None:
        if self._hold_until is not None:
            return
        with self._isolated(vehicle_id, "releasing its path"):
            nodes = self.traffic.release(vehicle_id)
            if nodes:
                self._outbox.append(DriveNodes(vehicle_id, tuple(nodes)))

    def wait_reason(self, vehicle_id: str) -> str | None:
        if (v := self.vehicles.get(vehicle_id)) is not None and v.safety_stop is not None:
            return f"stopped by its safety system: {v.safety_stop}"
        if vehicle_id in self._held_by_cell:
            return self._held_by_cell[vehicle_id]
        if v is not None and self._waits_for_decision(v):
            return f"waits for an operator's decision: {v.load_mismatch}"
        if (oid := self._awaiting_load.get(vehicle_id)) is not None:
            order = self.orders[oid]
            left = (order.ready_at or 0.0) - self.clock.now()
            return f"waits at {order.pickup} for the load of {oid}, ready in {max(0.0, left):.0f} s"
        reason = self.traffic.waiting.get(vehicle_id)
        return reason.describe() if reason else None

    def waits(self) -> dict[str, tuple[str, str]]:
        """Every vehicle standing still for a reason: (cause, the reason in words). Causes: what
        traffic has in the way (node, lane, zone, turn), a load not ready at the pick-up (load),
        a robot cell's transfer that holds the vehicle (cell), its safety system (safety), an
        operator's decision on its load (decision)."""
        out = {vid: (w.cause, w.describe()) for vid, w in self.traffic.stopped_waits().items()}
        for vid in self._awaiting_load:
            out[vid] = ("load", self.wait_reason(vid) or "")
        for vid, why in self._held_by_cell.items():
            out[vid] = ("cell", why)
        for vid in self._safety_stopped():
            out[vid] = ("safety", self.wait_reason(vid) or "")
        for vid in self._held_for_decision():
            out[vid] = ("decision", self.wait_reason(vid) or "")
        return out

    @staticmethod
    def _waits_for_decision(v: Vehicle) -> bool:
        """At the station of its order with a load mismatch: no pick or drop until it is decided."""
        task = v.task
        return (
            v.load_mismatch is not None
            and task is not None
            and task.kind is TaskKind.ORDER
            and task.phase is TaskPhase.TRAVEL
            and v.node == task.goal
        )

    def _held_for_decision(self) -> list[str]:
        return [vid for vid, v in self.vehicles.items() if self._waits_for_decision(v)]

    def _safety_stopped(self) -> list[str]:
        return [vid for vid, v in self.vehicles.items() if v.safety_stop is not None]

    def wait_causes(self) -> dict[str, str]:
        """The causes of `waits` alone (no words: cheap enough for every simulation step)."""
        out = {vid: w.cause for vid, w in self.traffic.stopped_waits().items()}
        out.update(dict.fromkeys(self._awaiting_load, "load"))
        out.update(dict.fromkeys(self._held_by_cell, "cell"))
        out.update(dict.fromkeys(self._safety_stopped(), "safety"))
        out.update(dict.fromkeys(self._held_for_decision(), "decision"))
        return out

    def path_ahead(self, vehicle_id: str) -> tuple[list[str], list[str]]:
        """(base: nodes released to the vehicle still ahead, horizon: planned, not released)."""
        if not self.vehicles[vehicle_id].placed:
            return [], []
        return self.traffic.remaining(vehicle_id)
