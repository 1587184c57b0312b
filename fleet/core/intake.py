"""Transport requests: orders and PLC calls checked against the plant and taken, priority
changes and cancellations. Each change has a `check_` form that changes nothing, so the service
can commit it before the core makes it."""

from __future__ import annotations

import math
from dataclasses import replace

from fleet.core.config import OrderRejected, priority_in_range
from fleet.core.dispatching import Dispatching
from fleet.events import CancelDrive
from fleet.model import OrderState, Transition, TransportOrder


class Intake(Dispatching):
    """Orders in: check, accept, re-prioritise, cancel."""

    def submit_order(
        self,
        pickup: str,
        dropoff: str,
        load_type: str | None = None,
        priority: int = 0,
        due_at: float | None = None,
        ready_at: float | None = None,
    ) -> TransportOrder:
        """Check and accept a transport order at once (callers without storage: the simulator)."""
        return self.accept(self.check_order(pickup, dropoff, load_type, priority, due_at, ready_at))

    def accept(self, order: TransportOrder) -> TransportOrder:
        """Take a checked order (from `check_order` or `check_call`) into the fleet: a shell with
        storage calls this only once the order is committed."""
        self._put_order(order)
        self._dispatch_wanted = True
        return order

    def check_order(
        self,
        pickup: str,
        dropoff: str,
        load_type: str | None = None,
        priority: int = 0,
        due_at: float | None = None,
        ready_at: float | None = None,
    ) -> TransportOrder:
        """The order a transport request makes, numbered but not taken yet (`accept`), or
        OrderRejected naming the field at fault. A `ready_at` in the future holds the pick-up
        until then (the vehicle waits at the station)."""
        stations = self.map.station_by_id
        if pickup not in stations:
            raise OrderRejected("pickup", f"unknown station '{pickup}'")
        if dropoff not in stations:
            raise OrderRejected("dropoff", f"unknown station '{dropoff}'")
        src, dst = stations[pickup], stations[dropoff]
        if not src.kind.can_pick:
            raise OrderRejected(
                "pickup", f"station '{pickup}' is a {src.kind.value} station, loads cannot be picked there"
            )
        if not dst.kind.can_drop:
            raise OrderRejected(
                "dropoff", f"station '{dropoff}' is a {dst.kind.value} station, loads cannot be dropped there"
            )
        if pickup == dropoff:
            raise OrderRejected("dropoff", "drop-off station is the pick-up station")
        common = src.load_types & dst.load_types
        if load_type is None:
            if not common:
                raise OrderRejected("dropoff", f"stations '{pickup}' and '{dropoff}' share no load type")
            load_type = sorted(common)[0]
        elif load_type not in common:
            raise OrderRejected("load_type", f"'{load_type}' is not handled at both '{pickup}' and '{dropoff}'")
        if not any(load_type in t.load_types for t in self.map.vehicle_types):
            raise OrderRejected("load_type", f"no vehicle type carries '{load_type}'")
        priority_in_range(priority)
        now = self.clock.now()
        if due_at is not None and not math.isfinite(due_at):
            raise OrderRejected("due_at", "due time must be a finite number of seconds since the epoch")
        if due_at is not None and due_at <= now:
            raise OrderRejected("due_at", f"due time already past ({now - due_at:.0f} s ago)")
        if ready_at is not None and not math.isfinite(ready_at):
            raise OrderRejected("ready_at", "ready time must be a finite number of seconds since the epoch")
        if due_at is not None and ready_at is not None and due_at <= ready_at:
            raise OrderRejected("due_at", f"due {ready_at - due_at:.0f} s before the load is ready (ready_at)")
        if not math.isfinite(self.full_graph.time(src.node, dst.node)):
            raise OrderRejected("dropoff", f"station '{dropoff}' cannot be reached from '{pickup}'")
        self._order_seq += 1
        order = TransportOrder(
            id=f"TO-{self._order_seq:06d}",
            pickup=pickup,
            dropoff=dropoff,
            load_type=load_type,
            priority=priority,
            created_at=now,
            due_at=due_at,
            ready_at=ready_at,
            history=(Transition(now, OrderState.ACCEPTED),),
        )
        return order

    def submit_call(self, station: str, need: str, load_type: str | None = None, priority: int = 0) -> TransportOrder:
        """Check and accept a station's call at once (callers without storage: the simulator)."""
        return self.accept(self.check_call(station, need, load_type, priority))

    def check_call(self, station: str, need: str, load_type: str | None = None, priority: int = 0) -> TransportOrder:
        """The order a station's call makes, not taken yet (`accept`): `material` brings a load
        from the nearest station that can give one, `removal` takes the station's load to the
        nearest station that can take it."""
        stations = self.map.station_by_id
        if station not in stations:
            raise OrderRejected("station", f"unknown station '{station}'")
        here = stations[station]
        if need not in ("material", "removal"):
            raise OrderRejected("need", "must be 'material' or 'removal'")
        if need == "material" and not here.kind.can_drop:
            raise OrderRejected("need", f"station '{station}' is a {here.kind.value} station: nothing can be delivered")
        if need == "removal" and not here.kind.can_pick:
            raise OrderRejected("need", f"station '{station}' is a {here.kind.value} station: nothing can be taken")
        if load_type is not None and load_type not in here.load_types:
            raise OrderRejected("load_type", f"station '{station}' does not handle '{load_type}'")
        wanted = {load_type} if load_type else set(here.load_types)
        candidates = []
        for other in self.map.stations:
            if other.id == station or not (other.load_types & wanted):
                continue
            if (need == "material" and other.kind.can_pick) or (need == "removal" and other.kind.can_drop):
                seconds = (
                    self.full_graph.time(other.node, here.node)
                    if need == "material"
                    else self.full_graph.time(here.node, other.node)
                )
                if math.isfinite(seconds):
                    candidates.append((seconds, other.id))
        if not candidates:
            raise OrderRejected(
                "station", f"no station can {'supply' if need == 'material' else 'take'} a load for '{station}'"
            )
        _, counterpart = min(candidates)
        pickup, dropoff = (counterpart, station) if need == "material" else (station, counterpart)
        common = sorted(stations[pickup].load_types & stations[dropoff].load_types & wanted)
        return self.check_order(pickup, dropoff, load_type or common[0], priority)

    def _open_order(self, order_id: str) -> TransportOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise OrderRejected("order_id", f"unknown order '{order_id}'")
        if order.state.terminal:
            raise OrderRejected("order_id", f"order {order_id} is already {order.state.value}")
        return order

    def check_priority(self, order_id: str, priority: int) -> TransportOrder:
        """The order as `set_priority` would make it (or `OrderRejected`); nothing changes yet:
        the service commits it first."""
        order = self._open_order(order_id)
        priority_in_range(priority)
        changed = replace(order, priority=priority)
        if order_id in self.quarantined:
            changed = replace(changed, reason="released from quarantine by a change: dispatched again")
        return changed

    def set_priority(self, order_id: str, priority: int) -> TransportOrder:
        """Change an open order's priority; the next dispatch takes it into account."""
        changed = self.check_priority(order_id, priority)
        self.quarantined.pop(order_id, None)
        self._put_order(changed)
        self._dispatch_wanted = True
        return changed

    def check_cancel(self, order_id: str, reason: str = "cancelled by operator") -> TransportOrder:
        """The order as `cancel_order` would leave it (or `OrderRejected`); nothing changes yet."""
        order = self._open_order(order_id)
        if order.state.loaded:
            raise OrderRejected("order_id", f"order {order_id} is {order.state.value}; the load is on a vehicle")
        return order.transition(OrderState.CANCELLED, self.clock.now(), reason=reason)

    def cancel_order(self, order_id: str, reason: str = "cancelled by operator") -> TransportOrder:
        """Cancel an order that no vehicle holds the load of yet."""
        self.check_cancel(order_id, reason)
        order = self.orders[order_id]
        driving = order.state is OrderState.TO_PICKUP
        self.quarantined.pop(order_id, None)
        order = self._move(order, OrderState.CANCELLED, reason=reason)
        if order.vehicle_id is not None:
            v = self.vehicles[order.vehicle_id]
            v = replace(v, stops=tuple(s for s in v.stops if s.order_id != order_id))
            if v.task is not None and v.task.order_id == order_id:
                v = replace(v, task=None)
                if driving:
                    # Release nothing more; the vehicle stops at its next node and reports where.
                    self.traffic.set_route(v.id, [self.traffic.released_end(v.id)])
                    v = replace(v, stopping=True)
                    self._outbox.append(CancelDrive(v.id))
            self._put_vehicle(v)
        self._dispatch_wanted = True
        return order
