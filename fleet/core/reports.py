"""What vehicles report about themselves: position and battery, mode, errors and safety stops,
load sensing, connection, abilities, refusals, and being moved by hand. The controller believes
what the vehicle reports and takes away work it cannot do."""

from __future__ import annotations

from dataclasses import replace

from fleet.core.config import OrderRejected
from fleet.core.execution import Execution
from fleet.events import (
    AbilitiesReported,
    CommandRefused,
    ConnectionChanged,
    DriveRejected,
    LoadReported,
    StateReport,
    VehicleMoved,
    VehicleStatus,
)
from fleet.model import OrderState, TaskKind, TaskPhase, Vehicle

SIZE_TOLERANCE_M = 0.01  # a factsheet's size this much over its map type's still fits


class VehicleReports(Execution):
    """The vehicle reports that change what a vehicle may be given, not where its tour is."""

    def _on_state(self, event: StateReport) -> None:
        v = self.vehicles[event.vehicle_id]
        battery = min(1.0, max(0.0, event.battery))
        if (v.x, v.y, v.heading, v.battery) == (event.x, event.y, event.heading, battery):
            return  # a vehicle standing still reports the same, and a copy per report adds up
        self._put_vehicle(replace(v, x=event.x, y=event.y, heading=event.heading, battery=battery), publish=False)

    def _on_status(self, event: VehicleStatus) -> None:
        """Operating mode, errors, safety stops: a vehicle not in automatic mode or with a FATAL
        error gets no work and hands back what it has not loaded; an e-stopped one gets no new work
        and keeps its orders; every new error and safety stop is raised as an alarm."""
        v = self.vehicles[event.vehicle_id]
        for error in event.errors:
            if error not in v.errors:
                self._alarm("vehicle-error", f"{v.id}: {error}", v.id)
        for error in v.errors:
            if error not in event.errors:
                self._alarm("vehicle-error-cleared", f"{v.id}: {error}", v.id)
        if event.safety_stop != v.safety_stop:
            if event.safety_stop is not None:
                self._alarm("vehicle-safety-stop", f"{v.id} stopped by its safety system: {event.safety_stop}", v.id)
            else:
                self._alarm("vehicle-safety-cleared", f"{v.id}: safety stop ({v.safety_stop}) released", v.id)
        was_able = v.automatic and not any(e.startswith("FATAL") for e in v.errors)
        v = replace(v, automatic=event.automatic, mode=event.mode, errors=event.errors, safety_stop=event.safety_stop)
        able = v.automatic and not any(e.startswith("FATAL") for e in v.errors)
        if was_able and not able:
            v = self._hand_back_unloaded(v, f"{v.id} unavailable: mode {event.mode}, errors {len(event.errors)}")
        elif able and not was_able:
            self._dispatch_wanted = True
        self._put_vehicle(v)

    def _on_load(self, event: LoadReported) -> None:
        """The vehicle's own load sensing against what the pick and drop actions said. A mismatch
        outside a load action is raised for the operator, and the vehicle waits for a decision
        (`decide_load`): it gets no new work and starts no pick or drop. Sensing that agrees with
        the record again ends the wait by itself."""
        v = self.vehicles[event.vehicle_id]
        acting = v.task is not None and v.task.phase is TaskPhase.ACTION and v.task.kind is TaskKind.ORDER
        if acting:
            return
        if event.loaded == bool(v.loads):
            if v.load_mismatch is not None:
                self._end_load_wait(v, f"{v.id}: its load sensing agrees with the record again")
            return
        if v.load_mismatch is None:
            expected = f"carrying {', '.join(v.loads)}" if v.loads else "empty"
            found = "a load" if event.loaded else "no load"
            mismatch = f"{v.id} reports {found} but should be {expected}"
            self._alarm("load-mismatch", f"{mismatch}: it waits for an operator's decision", v.id)
            self._put_vehicle(replace(v, load_mismatch=mismatch))

    def decide_load(self, vehicle_id: str, trust: str) -> Vehicle:
        """An operator's decision on a load mismatch. `trust="record"`: the controller's record
        is right (the sensing erred, or the load was put right by hand): the vehicle goes on with
        its work. `trust="vehicle"`: its report is right: the orders whose loads it should carry
        fail (the load is not where the record says: somebody must find it); a load nobody
        ordered keeps it waiting until its sensing reports the load taken off."""
        v = self._vehicle(vehicle_id)
        if v.load_mismatch is None:
            raise OrderRejected("vehicle_id", f"{vehicle_id} has no load mismatch to decide")
        if trust == "record":
            self._end_load_wait(v, f"{v.id}: the record kept by operator decision ({v.load_mismatch})")
        elif trust == "vehicle" and v.loads:
            for oid in v.loads:
                reason = f"the load is not on {v.id} (operator decision on its load sensing)"
                self._move(self.orders[oid], OrderState.FAILED, reason=reason)
            lost = set(v.loads)
            task = None if v.task is not None and v.task.order_id in lost else v.task
            stops = tuple(s for s in v.stops if s.order_id not in lost)
            v = replace(v, loads=(), task=task, stops=stops)
            self._put_vehicle(v)
            self._end_load_wait(v, f"{v.id}: its report kept by operator decision; {', '.join(sorted(lost))} failed")
            if task is None:
                self._next_task(v.id)
        elif trust == "vehicle":
            self._put_vehicle(replace(v, load_mismatch=f"{v.id} carries a load nobody ordered: take it off"))
        else:
            raise OrderRejected("trust", f"'{trust}': record or vehicle")
        return self.vehicles[vehicle_id]

    def _end_load_wait(self, v: Vehicle, why: str) -> None:
        self._alarm("load-mismatch-resolved", why, v.id)
        self._put_vehicle(replace(v, load_mismatch=None))
        self._dispatch_wanted = True
        self._arrived(v.id)  # held at its station: the pick or drop starts now (else nothing happens)

    def _on_connection(self, event: ConnectionChanged) -> None:
        v = self.vehicles[event.vehicle_id]
        now = self.clock.now()
        connection = "online" if event.online else (event.reason or "offline").lower()
        if event.online == v.online:
            if connection != v.connection:
                self._put_vehicle(replace(v, connection=connection, connection_since=now))
            return
        if event.online:
            self._alarm("vehicle-online", f"{v.id} is online", v.id)  # ends a vehicle-offline alarm
            self._put_vehicle(replace(v, online=True, offline_since=None, connection=connection, connection_since=now))
            self._dispatch_wanted = True
        else:
            self._put_vehicle(replace(v, online=False, offline_since=now, connection=connection, connection_since=now))
            self._alarm("vehicle-offline", f"{v.id} is offline ({event.reason or 'connection lost'})", v.id)

    def _return_orders_of_offline(self, now: float) -> None:
        """After the grace period, orders an offline vehicle has not loaded go back to the dispatcher."""
        for v in list(self.vehicles.values()):
            if v.online or v.offline_since is None or now - v.offline_since < self.config.offline_grace_s:
                continue
            reason = f"{v.id} offline for more than {self.config.offline_grace_s:.0f} s"
            # offline_since cleared: handed back once; the vehicle stays offline until it reports in.
            self._put_vehicle(replace(self._hand_back_unloaded(v, reason), offline_since=None))

    def _on_abilities(self, event: AbilitiesReported) -> None:
        """The factsheet says what the vehicle cannot do: without pick or drop, with limits this
        plant's orders break, or larger than the footprint its map type plans for, it gets no
        orders (and hands back those it has not loaded), and the operator is told why."""
        v = self.vehicles[event.vehicle_id]
        unfit = event.unfit
        vtype = self.map.vehicle_type_by_id.get(v.type_id)
        if event.size is not None and vtype is not None:
            width, length = event.size
            if width > vtype.width + SIZE_TOLERANCE_M or length > vtype.length + SIZE_TOLERANCE_M:
                unfit += (
                    f"{width:g} x {length:g} m, larger than the {vtype.width:g} x {vtype.length:g} m "
                    f"traffic plans for its type {vtype.id}",
                )
        if (event.lacks, unfit) == (v.lacks, v.unfit):
            return
        if event.lacks and event.lacks != v.lacks:
            self._alarm("vehicle-lacks", f"{v.id}: its factsheet lists no {', '.join(event.lacks)}", v.id)
        if unfit and unfit != v.unfit:
            self._alarm("vehicle-unfit", f"{v.id} gets no orders: its factsheet states {'; '.join(unfit)}", v.id)
        v = replace(v, lacks=event.lacks, unfit=unfit)
        if not v.available:
            why = ", ".join([*(f"cannot {a}" for a in event.lacks), *unfit])
            v = self._hand_back_unloaded(v, f"{v.id}: {why} (factsheet)")
        self._put_vehicle(v)
        self._dispatch_wanted = True

    def _on_command_refused(self, event: CommandRefused) -> None:
        """The vehicle refused (or never answered) a command: the controller's expectation is
        undone, and the operator told the vehicle's reason. A refused pause leaves the vehicle
        unpaused as it reports; a refused charge ends the charge task; a cancel the vehicle did
        not carry out leaves it out of service, for it may still drive."""
        v = self.vehicles[event.vehicle_id]
        self._alarm("command-refused", f"{v.id} refused {event.command}: {event.reason}", v.id)
        if event.command in ("startPause", "stopPause"):
            self._pause_sent[v.id] = event.command == "stopPause"
            self._put_vehicle(replace(v, paused=event.command == "stopPause"))
            self._dispatch_wanted = True
        elif event.command == "startCharging" and v.task is not None and v.task.kind is TaskKind.CHARGE:
            self._stopping_charge.discard(v.id)
            self._put_vehicle(replace(v, task=None))
            self._dispatch_wanted = True
        elif event.command == "cancelOrder":
            self.set_in_service(v.id, False)

    def _on_drive_rejected(self, event: DriveRejected) -> None:
        """The vehicle refused its path: take it out of service (its claims stay, it may still be
        driving its earlier base) and hand the orders it has not loaded back to the dispatcher."""
        v = self.vehicles[event.vehicle_id]
        order_id = v.task.order_id if v.task else None
        self._alarm("drive-rejected", f"{v.id} rejected its path: {event.reason}", v.id, order_id)
        if v.task is not None and v.task.phase is TaskPhase.ACTION and order_id is not None:
            order = self.orders[order_id]
            if order.state is OrderState.LOADING:
                # The pick was refused, not started: the load is still at the station. The order
                # goes back to the dispatcher (another vehicle, or the operator) with the reason.
                self._move(order, OrderState.ACCEPTED, reason=f"{v.id} refused the pick: {event.reason}")
                v = replace(v, task=None, stops=tuple(s for s in v.stops if s.order_id != order_id))
        v = self._hand_back_unloaded(v, f"{v.id} rejected the path: {event.reason}")
        self._put_vehicle(replace(v, in_service=False))

    def _on_moved(self, event: VehicleMoved) -> None:
        """The vehicle stands elsewhere than the controller has it (moved by hand) and holds
        nothing of ours: an idle or parked one is re-placed there (a `vehicle-moved` alarm), a
        busy one, or one reporting a node another vehicle holds, is taken out of service with a
        `position-conflict` alarm until the operator sets its position."""
        v = self.vehicles[event.vehicle_id]
        if not v.placed or v.node == event.node:
            return
        if v.task is not None and v.task.kind is not TaskKind.PARK:
            busy = f"{v.id} reports standing at {event.node} while {v.task.kind.value} at {v.node}; set its position"
            self._alarm("position-conflict", busy, v.id)
            self.set_in_service(v.id, False)
            return
        if not self._relocated(v.id, event.node):
            return
        pos = self.map.node_by_id[event.node]
        old = v.node
        self._put_vehicle(replace(v, node=event.node, x=pos.x, y=pos.y, task=self._parked_at(event.node)))
        self._alarm("vehicle-moved", f"{v.id} reports standing at {event.node}, not {old}: placed there", v.id)
        self._release_waiting_on(v.id)
        self._dispatch_wanted = True
