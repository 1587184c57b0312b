"""What a plan costs and whether it holds: completion times, energy per route, and the validator
every plan goes through (one check per rule, each naming what broke)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from planners.assignment.model import (
    LATENESS_PER_COMPLETION,
    AssignmentPlan,
    OrderTask,
    Stop,
    StopKind,
    TravelMatrix,
    VehicleSlot,
)


def _timed_stops(
    vehicle: VehicleSlot, stops: Sequence[Stop], by_id: Mapping[str, OrderTask], travel: TravelMatrix
) -> Iterator[tuple[Stop, OrderTask, float, float, float]]:
    """The stops of a route driven back to back from when the vehicle is free: per stop, the
    seconds driven to it, the seconds standing there (the service, and at a pick-up reached
    early, until the load is ready) and when it leaves."""
    t, at = vehicle.available_in_s, vehicle.node
    for stop in stops:
        order = by_id[stop.order_id]
        pick = stop.kind is StopKind.PICKUP
        node = order.pickup if pick else order.dropoff
        leg = float(travel[at, node])
        t += leg
        stand = max(0.0, order.ready_in_s - t) + order.pickup_service_s if pick else order.dropoff_service_s
        t += stand
        at = node
        yield stop, order, leg, stand, t


def evaluate_routes(
    routes: Mapping[str, Sequence[Stop]],
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix,
) -> tuple[dict[str, float], float]:
    """Completion time per order and the objective, for routes driven back to back (waiting at a
    pick-up reached before its load is ready): the
    priority-weighted sum of completion times, plus lateness past each due time weighted as the
    solver weighs it."""
    by_id = {o.id: o for o in orders}
    completion: dict[str, float] = {}
    for vehicle in vehicles:
        for stop, order, _, _, done in _timed_stops(vehicle, routes.get(vehicle.id, ()), by_id, travel):
            if stop.kind is StopKind.DROPOFF:
                completion[order.id] = done
    objective = 0.0
    for oid, done in completion.items():
        order = by_id[oid]
        late = max(0.0, done - order.due_in_s) if order.due_in_s is not None else 0.0
        # The solver's weights, in its units: completion time plus lateness at the stiffer rate.
        objective += order.weight * (done + late * LATENESS_PER_COMPLETION)
    return completion, objective


def route_energy(
    vehicle: VehicleSlot,
    stops: Sequence[Stop],
    orders: Sequence[OrderTask],
    travel: TravelMatrix,
    to_charger: bool = True,
) -> float:
    """Wh the vehicle uses on its route (driving, loads on board, standing for services and for
    loads not ready yet) and, with `to_charger`, on the drive from the last drop-off to the
    nearest charger (0 for an empty route, inf when a leg or the charger cannot be reached); 0
    without an energy model."""
    use = vehicle.energy
    if use is None or not stops:
        return 0.0
    by_id = {o.id: o for o in orders}
    wh, on_board, at = 0.0, 0, vehicle.node
    for stop, order, leg, stand, _ in _timed_stops(vehicle, stops, by_id, travel):
        wh += use.driving(leg) + on_board * use.loaded(leg) + use.standing(stand)  # loads on board all the leg
        on_board += 1 if stop.kind is StopKind.PICKUP else -1
        at = order.pickup if stop.kind is StopKind.PICKUP else order.dropoff
    return wh + use.to_charger(at) if to_charger else wh


def _within_energy(
    routes: Mapping[str, tuple[Stop, ...]],
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix,
) -> dict[str, tuple[Stop, ...]]:
    """Routes cut back, order by order from the last picked up, until `route_energy` fits. The
    solver's energy dimension counts a load over the direct leg from its pick-up to its drop-off
    (a transit cannot depend on what is on board), which is exact with one load at a time and
    too little when a vehicle with several on board drives between stations: this makes the
    plan true to the count the validator uses."""
    by_vehicle = {v.id: v for v in vehicles}
    fitted = {}
    for vid, stops in routes.items():
        v = by_vehicle.get(vid)
        kept = list(stops)
        while v is not None and kept and route_energy(v, kept, orders, travel) > v.energy_wh + 1e-6:
            last = next(s.order_id for s in reversed(kept) if s.kind is StopKind.PICKUP)
            kept = [s for s in kept if s.order_id != last]
        fitted[vid] = tuple(kept)
    return fitted


def validate_plan(
    plan: AssignmentPlan,
    orders: Sequence[OrderTask],
    vehicles: Sequence[VehicleSlot],
    travel: TravelMatrix | None = None,
) -> list[str]:
    """Problems of a plan: orders served twice or never, drop-off before pick-up or on another vehicle,
    capacity exceeded, vehicles not allowed for an order, unknown vehicles or orders, and (given
    the travel times) a route that takes more energy than its vehicle has above its reserve,
    counting the drive to a charger after it, and an order finished sooner than its load is
    ready plus its pick-up, drive and drop-off. Empty when valid."""
    problems: list[str] = []
    known_orders = {o.id for o in orders}
    if travel is not None:
        for order in orders:
            done = plan.completion_s.get(order.id)
            soonest = _finish(order, order.ready_in_s, travel)
            if done is not None and done < soonest - 1e-6:
                problems.append(
                    f"order {order.id}: finished at {done:.1f} s, before its load is ready"
                    f" ({order.ready_in_s:.1f} s) plus pick-up, drive and drop-off ({soonest:.1f} s)"
                )
        for vehicle in vehicles:
            stops = plan.routes.get(vehicle.id, ())
            if vehicle.energy is not None and all(s.order_id in known_orders for s in stops):
                need = route_energy(vehicle, stops, orders, travel)
                if need > vehicle.energy_wh + 1e-6:
                    problems.append(
                        f"vehicle {vehicle.id}: route needs {need:.1f} Wh with the drive to a charger,"
                        f" {vehicle.energy_wh:.1f} Wh above its reserve"
                    )
    allowed = {o.id: o.allowed_vehicles for o in orders}
    capacity = {v.id: v.capacity for v in vehicles}
    picked_by: dict[str, str] = {}
    dropped: set[str] = set()
    for vid, stops in plan.routes.items():
        if vid not in capacity:
            problems.append(f"unknown vehicle {vid}")
            continue
        on_board: set[str] = set()
        for stop in stops:
            if stop.order_id not in known_orders:
                problems.append(f"vehicle {vid}: unknown order {stop.order_id}")
            elif stop.kind is StopKind.PICKUP:
                if stop.order_id in picked_by:
                    problems.append(f"order {stop.order_id}: picked up twice")
                allowed_here = allowed[stop.order_id]
                if allowed_here is not None and vid not in allowed_here:
                    problems.append(f"order {stop.order_id}: served by {vid}, which may not carry it")
                picked_by[stop.order_id] = vid
                on_board.add(stop.order_id)
                if len(on_board) > capacity[vid]:
                    problems.append(f"vehicle {vid}: {len(on_board)} loads exceed capacity {capacity[vid]}")
            else:
                if stop.order_id not in on_board:
                    problems.append(f"order {stop.order_id}: dropped off by {vid} without being on board")
                on_board.discard(stop.order_id)
                dropped.add(stop.order_id)
        for left in sorted(on_board):
            problems.append(f"order {left}: picked up by {vid} but never dropped off")
    served = set(picked_by) | set(plan.unassigned)
    for oid in sorted(known_orders - served):
        problems.append(f"order {oid}: neither served nor reported unassigned")
    for oid in sorted(set(plan.unassigned) & set(picked_by)):
        problems.append(f"order {oid}: reported unassigned but served")
    return problems


def _finish(order: OrderTask, arrive: float, travel: TravelMatrix) -> float:
    """When an order is delivered if its vehicle reaches the pick-up at `arrive`, one at a time."""
    return (
        max(arrive, order.ready_in_s)
        + order.pickup_service_s
        + float(travel[order.pickup, order.dropoff])
        + order.dropoff_service_s
    )
