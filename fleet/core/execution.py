"""Executing orders: driving a vehicle to its next stop, the pick and drop at arrival, what
follows an action, a cancel or a lost order, and taking back the orders of a restart."""

from __future__ import annotations

from dataclasses import replace

from fleet.core.scheduling import Scheduling
from fleet.events import (
    ActionFinished,
    ActionKind,
    DriveCancelled,
    DriveNodes,
    NodeReached,
    OrderLost,
    StartAction,
    TransferProblem,
)
from fleet.model import OrderState, Task, TaskKind, TaskPhase, TransportOrder, order_number
from planners.assignment import Stop, StopKind


class Execution(Scheduling):
    """Vehicles' tours carried out: `_next_task` drives a vehicle to its next stop, `_arrived` starts
    the pick or drop there, and the events of progress (nodes, actions, cancels) move it on."""

    def restore(self, orders: list[TransportOrder]) -> None:
        """Take back the open orders storage held when the controller stopped.

        Orders no vehicle had loaded return to the dispatcher. An order whose load was on a vehicle
        stays that vehicle's: when the vehicle is (or comes) on the map it drives to the drop-off
        and delivers; an interrupted drop is done again, and the order finishes once.
        """
        for order in orders:
            if order.state.terminal:
                continue
            self._order_seq = max(self._order_seq, order_number(order.id))
            self.orders[order.id] = order
            if order.state.loaded and order.vehicle_id:
                self._loaded_awaiting.setdefault(order.vehicle_id, []).append(order.id)
                if order.vehicle_id in self.vehicles and self.vehicles[order.vehicle_id].placed:
                    self._resume_delivery(order.vehicle_id)
            elif order.state is not OrderState.ACCEPTED:
                self._move(order, OrderState.ACCEPTED, reason="restored after a controller restart")
        self._dispatch_wanted = True

    def _resume_delivery(self, vehicle_id: str) -> None:
        """The vehicle carries restored loads: it delivers them, in the order they were accepted."""
        loads = sorted(self._loaded_awaiting.pop(vehicle_id), key=order_number)
        for oid in loads:
            if self.orders[oid].state is not OrderState.TO_DROPOFF:
                self._move(self.orders[oid], OrderState.TO_DROPOFF, reason="restored after a controller restart")
        v = self.vehicles[vehicle_id]
        drops = tuple(Stop(oid, StopKind.DROPOFF) for oid in loads)
        # An idle vehicle (parked, say) sets out at once; a busy one delivers after its task.
        task = None if v.idle else v.task
        self._put_vehicle(replace(v, task=task, loads=(*v.loads, *loads), stops=(*drops, *v.stops)))
        if task is None:
            self._next_task(vehicle_id)

    def _next_task(self, vehicle_id: str) -> None:
        """Drive a vehicle without a task to its next stop, or leave it for the park phase. At the
        first pick-up of a tour, every order picked up before the vehicle is empty again is
        committed to it (to pick-up): the dispatcher plans from the tour's end."""
        v = self.vehicles[vehicle_id]
        while v.stops:
            stop, v = v.stops[0], replace(v, stops=v.stops[1:])
            order = self.orders[stop.order_id]
            if order.vehicle_id != v.id:
                continue
            if stop.kind is StopKind.PICKUP and order.state is OrderState.ASSIGNED:
                for oid in self._tour(len(v.loads), (stop, *v.stops)):
                    if (o := self.orders[oid]).state is OrderState.ASSIGNED and o.vehicle_id == v.id:
                        self._move(o, OrderState.TO_PICKUP, vehicle_id=v.id)
                order = self.orders[order.id]
            wanted = OrderState.TO_PICKUP if stop.kind is StopKind.PICKUP else OrderState.TO_DROPOFF
            if order.state is not wanted:
                continue
            goal = self._station(order, stop.kind).node
            self._put_vehicle(replace(v, task=Task(TaskKind.ORDER, goal, order_id=order.id)))
            self._drive_to(v.id, goal)
            return
        self._put_vehicle(v)
        self._dispatch_wanted = True

    def _drive_to(self, vehicle_id: str, goal: str) -> None:
        with self._isolated(vehicle_id, f"planning its path to {goal}"):
            self._set_route(vehicle_id, goal)
            self._release(vehicle_id)
            if self.traffic.at_goal(vehicle_id):
                self._arrived(vehicle_id)

    def _arrived(self, vehicle_id: str) -> None:
        v = self.vehicles[vehicle_id]
        task = v.task
        if task is None or task.phase is not TaskPhase.TRAVEL or v.node != task.goal:
            return
        if v.load_mismatch is not None and task.kind is TaskKind.ORDER:
            # No pick or drop before the operator's decision on its load (`_held_for_decision`).
            self._put_vehicle(v)  # its wait reason changed
            return
        acting = replace(task, phase=TaskPhase.ACTION)
        self._put_vehicle(replace(v, task=acting))
        if task.kind is TaskKind.PARK:
            return
        if task.kind is TaskKind.CHARGE:
            assert task.place_id is not None
            until = self.config.dispatch.charge_until
            self._outbox.append(StartAction(v.id, ActionKind.CHARGE, task.place_id, until_battery=until))
            return
        assert task.order_id is not None
        order = self.orders[task.order_id]
        if order.state is OrderState.TO_PICKUP and order.ready_at is not None and order.ready_at > self.clock.now():
            self._awaiting_load[v.id] = order.id  # the tick starts the pick when the load is ready
        elif order.state is OrderState.TO_PICKUP:
            self._start_pick(v.id, order)
        elif order.state is OrderState.TO_DROPOFF:
            self._move(order, OrderState.UNLOADING)
            self._outbox.append(StartAction(v.id, ActionKind.DROP, order.dropoff, order.id))

    def _start_pick(self, vehicle_id: str, order: TransportOrder) -> None:
        self._move(order, OrderState.LOADING)
        self._outbox.append(StartAction(vehicle_id, ActionKind.PICK, order.pickup, order.id))

    def _pick_ready_loads(self, now: float) -> None:
        """Vehicles waiting at a pick-up for a load whose time has come pick it up; a wait whose
        order or task changed meanwhile (cancelled, handed back) is over."""
        for vehicle_id, oid in list(self._awaiting_load.items()):
            order, task = self.orders.get(oid), self.vehicles[vehicle_id].task
            still = (
                order is not None
                and order.state is OrderState.TO_PICKUP
                and order.vehicle_id == vehicle_id
                and task is not None
                and task.order_id == oid
                and task.phase is TaskPhase.ACTION
            )
            if not still:
                del self._awaiting_load[vehicle_id]
            elif order is not None and now >= (order.ready_at or 0.0):
                del self._awaiting_load[vehicle_id]
                self._start_pick(vehicle_id, order)

    def _on_node_reached(self, event: NodeReached) -> None:
        v = self.vehicles[event.vehicle_id]
        self.traffic.reached(v.id, event.node)
        pos = self.map.node_by_id[event.node]
        self._put_vehicle(replace(v, node=event.node, x=pos.x, y=pos.y), publish=False)
        # The vehicle freed what lies behind it: it and anyone waiting on it may move on.
        self._release(v.id)
        self._release_waiting_on(v.id)
        if self.traffic.at_goal(v.id):
            self._arrived(v.id)

    def _on_action_finished(self, event: ActionFinished) -> None:
        self._held_by_cell.pop(event.vehicle_id, None)
        v = self.vehicles[event.vehicle_id]
        task = v.task
        if task is None or task.phase is not TaskPhase.ACTION:
            self._alarm("unexpected-action", f"{v.id} finished {event.action.value} without a running action", v.id)
            return
        if event.action is ActionKind.CHARGE:
            self._stopping_charge.discard(v.id)
            self._put_vehicle(replace(v, task=None))
            if v.stops:
                self._next_task(v.id)  # the order that interrupted the charge
            self._dispatch_wanted = True
            return
        assert task.order_id is not None
        order = self.orders[task.order_id]
        if not event.ok:
            # What it carries stays on record: a failed drop leaves the load on the vehicle.
            self._move(order, OrderState.FAILED, reason=event.reason or f"{event.action.value} failed")
            self._alarm("action-failed", f"{v.id}: {event.action.value} failed: {event.reason}", v.id, order.id)
            self._put_vehicle(replace(v, task=None, stops=tuple(s for s in v.stops if s.order_id != order.id)))
            self._next_task(v.id)
            return
        if event.action is ActionKind.PICK:
            self._move(order, OrderState.TO_DROPOFF)
            drop = Stop(order.id, StopKind.DROPOFF)
            stops = v.stops if drop in v.stops else (drop, *v.stops)
            self._put_vehicle(replace(v, loads=(*v.loads, order.id), task=None, stops=stops))
        else:
            self._move(order, OrderState.FINISHED)
            self._put_vehicle(replace(v, loads=tuple(o for o in v.loads if o != order.id), task=None))
        self._next_task(v.id)

    def _on_transfer_problem(self, event: TransferProblem) -> None:
        """The cell did not transfer: the vehicle keeps its action running (it stays at the
        station, the load where it is) and the operator is told to retry or abort."""
        v = self.vehicles[event.vehicle_id]
        order_id = v.task.order_id if v.task else None
        why = f"{event.reason}; retry or abort the transfer at {event.station_id}"
        self._held_by_cell[v.id] = why
        self._alarm("transfer-failed", f"{v.id}: {why}", v.id, order_id)
        self._put_vehicle(v)  # its wait reason changed

    def _on_drive_cancelled(self, event: DriveCancelled) -> None:
        """The vehicle stopped at a node, or between two (it keeps the lane it stands on and the
        node ahead, and its next route starts there: never an assumed node)."""
        v = self.vehicles[event.vehicle_id]
        self.traffic.stop_at(v.id, event.node, event.ahead)
        if event.ahead:
            self._put_vehicle(replace(v, stopping=False, node=event.node))  # its position is as reported
            # Sent on at once to the node ahead (what it holds, already released): standing on a
            # lane it blocks it, and an idle vehicle with nowhere to park would stay there.
            self._outbox.append(DriveNodes(v.id, ()))
        else:
            pos = self.map.node_by_id[event.node]
            self._put_vehicle(replace(v, stopping=False, node=event.node, x=pos.x, y=pos.y))
        self._release_waiting_on(v.id)
        self._dispatch_wanted = True

    def _on_order_lost(self, event: OrderLost) -> None:
        """The vehicle restarted and lost its order: it stands where it reports and drives
        nothing more of it. Its route is planned again from there (a new order, not the old one
        sent again); loads are reconciled by what it reports (`_on_load`)."""
        v = self.vehicles[event.vehicle_id]
        self.traffic.stop_at(v.id, v.node)  # nothing released to it is driven any more
        if event.node != v.node and not self._relocated(v.id, event.node):  # it came back elsewhere
            return
        pos = self.map.node_by_id[event.node]
        task = v.task
        if task is not None and task.phase is TaskPhase.ACTION and task.kind is not TaskKind.PARK:
            task = replace(task, phase=TaskPhase.TRAVEL)  # its action went with the order: done again
            if task.order_id is not None and self.orders[task.order_id].state is OrderState.LOADING:
                self._move(self.orders[task.order_id], OrderState.TO_PICKUP, reason=f"{v.id} lost its pick")
            elif task.order_id is not None and self.orders[task.order_id].state is OrderState.UNLOADING:
                self._move(self.orders[task.order_id], OrderState.TO_DROPOFF, reason=f"{v.id} lost its drop")
        self._put_vehicle(replace(v, node=event.node, x=pos.x, y=pos.y, stopping=False, task=task))
        self._alarm("order-lost", f"{v.id} lost its order (restarted?): planned again from {event.node}", v.id)
        if task is not None and task.phase is TaskPhase.TRAVEL:
            self._drive_to(v.id, task.goal)
        self._release_waiting_on(v.id)
        self._dispatch_wanted = True
