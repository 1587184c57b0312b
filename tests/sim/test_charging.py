"""A day on the solar-module plant: charging keeps every cart well above empty for 24 simulated
hours, and every order accepted is delivered (12 carts, 8 calls per cart-hour, then 30 minutes
without calls; the run is `plant_day` in tests/sim/conftest.py). Measured: lowest battery 18.6 %
(idle power and load drain on), 2341 of 2341 orders finished."""

from __future__ import annotations

from fleet.model import OrderState
from tests.sim.conftest import PlantDay


def test_a_day_of_charging_keeps_every_cart_going_and_loses_no_order(plant_day: PlantDay) -> None:
    sim = plant_day.sim
    orders = list(sim.controller.orders.values())
    assert plant_day.lowest_battery > 0.10, f"a cart fell to {plant_day.lowest_battery:.1%}"
    assert len(orders) > 2000
    assert all(o.state is OrderState.FINISHED for o in orders), [o.id for o in orders if o.state.terminal is False][:5]
    assert sim.oracle.collisions == [] and sim.controller.stats.deadlocks_unresolved == 0
