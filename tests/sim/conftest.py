"""A day on the solar-module plant, simulated once for the tests that look at it: the 8-hour
shift's KPIs (tests/sim/test_shift.py) are read at the 8-hour mark of the 24 hours that the
charging test (tests/sim/test_charging.py) needs, instead of simulating those 8 hours twice."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from maps import FacilityMap
from sim.kpi import KpiReport
from sim.runner import SimConfig, Simulation

SHIFT_H, DAY_H, DRAIN_S = 8, 24, 1800.0


@dataclass(frozen=True)
class PlantDay:
    shift: KpiReport  # at the end of the first 8 hours
    lowest_battery: float  # lowest charge of any cart, sampled each simulated minute of the day
    sim: Simulation  # after the day and a 30-minute drain without calls


@pytest.fixture(scope="session")
def plant_day(plant_map: FacilityMap) -> PlantDay:
    """12 carts, 8 calls per cart-hour, seed 1, for 24 hours; then 30 minutes without calls."""
    sim = Simulation(plant_map, SimConfig(vehicles=12, hours=DAY_H, seed=1))
    lowest, shift = 1.0, None
    while sim.elapsed < DAY_H * 3600:
        sim.run_for(60)
        lowest = min(lowest, *(v.battery for v in sim.vehicles))
        if shift is None and sim.elapsed >= SHIFT_H * 3600:
            shift = sim.report(0.0)
    assert shift is not None
    sim.demand_enabled = False
    sim.run_for(DRAIN_S)
    return PlantDay(shift, lowest, sim)
