"""The nearest-free-vehicle baseline: the plan every solve is warm-started from and must beat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from planners.assignment.evaluate import _finish, evaluate_routes, route_energy
from planners.assignment.model import (
    AssignmentPlan,
    OrderTask,
    Stop,
    TravelMatrix,
    VehicleSlot,
)


def greedy_plan(
    orders: Sequence[OrderTask], vehicles: Sequence[VehicleSlot], travel: TravelMatrix, keep_current: bool = False
) -> AssignmentPlan:
    """Baseline: orders by priority then arrival, each to the vehicle that can pick it up first,
    served one at a time, as far as the vehicle's energy goes. With `keep_current`, orders stay
    with the vehicle they are assigned to (in the sequence given, while its energy lasts) and
    only the others are placed: the plan as it stands."""
    free_at = {v.id: (v.available_in_s, v.node) for v in vehicles}
    used = {v.id: 0.0 for v in vehicles}
    slot = {v.id: v for v in vehicles}
    routes: dict[str, list[Stop]] = {v.id: [] for v in vehicles}
    unassigned = []
    placed: set[str] = set()

    def fits(vid: str, order: OrderTask) -> float | None:
        """Energy used after adding the order, or None when the vehicle could not then reach a charger."""
        v, (free, at) = slot[vid], free_at[vid]
        if v.energy is None:
            return 0.0
        leg = replace(v, node=at, available_in_s=free)
        after = used[vid] + route_energy(leg, order.stops, [order], travel, to_charger=False)
        return after if after + v.energy.to_charger(order.dropoff) <= v.energy_wh else None

    def place(vid: str, order: OrderTask, arrive: float, energy: float) -> None:
        free_at[vid] = (_finish(order, arrive, travel), order.dropoff)
        used[vid] = energy
        routes[vid].extend(order.stops)
        placed.add(order.id)

    if keep_current:
        for order in orders:
            vid = order.current_vehicle
            if vid is None or vid not in free_at or (energy := fits(vid, order)) is None:
                continue
            t, at = free_at[vid]
            place(vid, order, t + float(travel[at, order.pickup]), energy)
    ranked = sorted(enumerate(orders), key=lambda p: (-p[1].priority, p[0]))
    for _, order in ranked:
        if order.id in placed:
            continue
        best: tuple[float, str, float] | None = None
        for v in vehicles:
            if order.allowed_vehicles is not None and v.id not in order.allowed_vehicles:
                continue
            t, at = free_at[v.id]
            arrive = t + float(travel[at, order.pickup])
            reachable = np.isfinite(arrive) and np.isfinite(travel[order.pickup, order.dropoff])
            # Reaching it sooner than the load is ready gains nothing: ties go to the first vehicle.
            arrive = max(arrive, order.ready_in_s)
            if reachable and (best is None or arrive < best[0]) and (energy := fits(v.id, order)) is not None:
                best = (arrive, v.id, energy)
        if best is None:
            unassigned.append(order.id)
            continue
        place(best[1], order, best[0], best[2])
    frozen = {vid: tuple(stops) for vid, stops in routes.items()}
    completion, objective = evaluate_routes(frozen, orders, vehicles, travel)
    return AssignmentPlan(frozen, completion, objective, tuple(unassigned), solver="greedy")
