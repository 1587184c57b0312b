"""Restart: a controller started on the storage of one that stopped dead loses no order and
finishes each exactly once, including orders whose load was on a vehicle."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fleet.model import OrderState, order_number
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from sim.runner import SimConfig, Simulation

LOADED = (OrderState.LOADING, OrderState.TO_DROPOFF, OrderState.UNLOADING)


def plant(fmap: FacilityMap, db: Path, seed: int, demand: bool) -> tuple[Simulation, FleetService]:
    sim = Simulation(fmap, SimConfig(vehicles=3, seed=seed, orders_per_hour=120), demand_enabled=demand)
    service = FleetService(sim.controller, OrderStore(db))
    sim.listeners.append(service.record)
    return sim, service


def test_stopped_dead_then_restarted(small_map: FacilityMap, tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    first, first_service = plant(small_map, db, seed=7, demand=True)
    first.run_for(900)
    for _ in range(2000):  # stop at a moment when loads are on vehicles and orders wait
        first.step()
        states = [o.state for o in first.controller.orders.values()]
        if sum(s in LOADED for s in states) >= 1 and states.count(OrderState.ACCEPTED) >= 1:
            break
    at_kill = {o.id: o.state for o in first.controller.orders.values()}
    assert any(s in LOADED for s in at_kill.values()) and any(not s.terminal for s in at_kill.values())
    stored_ids = {o.id for o in first.controller.orders.values()}
    assert first_service.store.count() == len(stored_ids), "every order the core knew was committed"
    # No shutdown, no close: the first controller is simply gone.

    second, service = plant(small_map, db, seed=8, demand=False)
    assert {o.id for o in second.controller.open_orders()} == {k for k, s in at_kill.items() if not s.terminal}
    second.run_for(1800)
    for order_id in stored_ids:
        order = service.store.get(order_id)
        assert order is not None
        assert order.state is OrderState.FINISHED, (order_id, at_kill[order_id], order.state)
        finished = [t for t in order.history if t.state is OrderState.FINISHED]
        assert len(finished) == 1, f"{order_id} finished {len(finished)} times"
    new = asyncio.run(service.submit_order("ST-A", "ST-B"))
    assert order_number(new.id) > max(order_number(i) for i in stored_ids), "ids are not reused"
