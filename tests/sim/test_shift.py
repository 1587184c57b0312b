"""Simulated shifts: KPIs and the collision/deadlock oracle, and same seed, same result."""

from __future__ import annotations

import pytest

from maps import FacilityMap
from sim.kpi import KpiReport
from sim.runner import SimConfig, run_simulation
from tests.sim.conftest import PlantDay


@pytest.fixture(scope="module")
def shift_pair(plant_map: FacilityMap) -> tuple[KpiReport, KpiReport]:
    """Two hours with 12 vehicles on the solar-module plant, run twice with seed 1."""
    config = SimConfig(vehicles=12, hours=2, seed=1)
    first, _ = run_simulation(plant_map, config)
    second, _ = run_simulation(plant_map, config)
    return first, second


def test_eight_hour_shift_finishes_what_it_accepted(plant_day: PlantDay) -> None:
    """Every order accepted more than 15 minutes before the end is finished; nothing collides or
    deadlocks (the first 8 hours of `plant_day`: 12 vehicles, seed 1)."""
    report = plant_day.shift
    assert report.simulated_hours == pytest.approx(8.0)
    assert report.orders_accepted > 700  # 8 calls per vehicle-hour: about 768
    assert report.orders_stuck == 0
    assert report.orders_failed == 0
    assert report.orders_finished >= report.orders_accepted - 12 * 2  # at most a little work in hand at the end
    assert report.collisions == 0
    assert report.claim_violations == 0
    assert report.deadlocks == 0
    assert report.finished_per_hour >= 0.95 * 8 * 12
    assert 0.2 < report.utilisation < 0.95
    assert report.lead_time_p95_s < 15 * 60


def test_same_seed_gives_identical_kpis(shift_pair: tuple[KpiReport, KpiReport]) -> None:
    first, second = shift_pair
    assert first.orders_finished > 100
    assert first.same_outcome(second), (first, second)


def test_other_seed_gives_another_shift(plant_map: FacilityMap) -> None:
    a, _ = run_simulation(plant_map, SimConfig(vehicles=4, hours=0.5, seed=1))
    b, _ = run_simulation(plant_map, SimConfig(vehicles=4, hours=0.5, seed=2))
    assert not a.same_outcome(b)


def test_small_map_exercises_corridor_dead_end_and_fire_door(small_map: FacilityMap) -> None:
    """Four carts on the small map: the two-way corridor, the dead-end spur to ST-D1 and the
    single-vehicle fire door all see traffic, without collision or deadlock."""
    report, sim = run_simulation(small_map, SimConfig(vehicles=4, hours=2, seed=5, orders_per_hour=60))
    assert report.collisions == 0 and report.claim_violations == 0 and report.deadlocks == 0
    assert report.orders_stuck == 0
    dead_end = [o for o in sim.controller.orders.values() if o.dropoff == "ST-D1" and o.state.value == "finished"]
    assert dead_end, "orders to the dead-end station were served"
    assert report.orders_finished >= report.orders_accepted - 4
    waits = report.waiting_s_by_cause
    assert set(waits) <= {"node", "lane", "zone", "turn"} and waits.get("node", 0) > 0, (
        "queues at stations are explained"
    )
    assert sum(waits.values()) < 0.25 * 4 * 2 * 3600, "waiting is a small share of the vehicles' time"
