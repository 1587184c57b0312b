"""Random delays the controller does not plan for (vehicles slowed, paused, stopped) never cause a
collision, a deadlock or a lost order: after the shift, with calls stopped, every order finishes."""

from __future__ import annotations

import pytest

from maps import FacilityMap, load_map
from sim.faults import DELAYS
from sim.runner import SimConfig, Simulation
from tests.sim.conftest import DRAIN_S


def shift_then_drain(fmap: FacilityMap, config: SimConfig) -> Simulation:
    sim = Simulation(fmap, config)
    sim.run_for(config.hours * 3600)
    sim.demand_enabled = False
    sim.run_for(DRAIN_S)
    return sim


# Five seeds of an hour at 12 carts and one at 30 here; bench/fault_runs.py runs 8 hours at
# 12, 30 and 60 carts for five seeds each (docs/benchmarks.md: "Long fault runs").
@pytest.mark.parametrize(("vehicles", "hours", "seed"), [(12, 1, s) for s in range(1, 6)] + [(30, 1, 1)])
def test_plant_with_random_delays(plant_map: FacilityMap, vehicles: int, hours: float, seed: int) -> None:
    sim = shift_then_drain(plant_map, SimConfig(vehicles=vehicles, hours=hours, seed=seed, faults_per_vehicle_hour=2.0))
    report = sim.report(0.0)
    assert len(sim.faults.history) >= vehicles * hours, "faults were really injected"
    assert {f.kind for f in sim.faults.history} == set(DELAYS)
    assert report.collisions == 0 and report.claim_violations == 0
    assert report.deadlocks == 0
    assert report.orders_accepted > 5 * vehicles * hours
    assert report.orders_open == 0, "every accepted order finished"
    assert report.orders_failed == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_small_map_with_random_delays(small_map: FacilityMap, seed: int) -> None:
    """The tight map, with its corridor, dead end and fire door, under heavy faults."""
    config = SimConfig(vehicles=4, hours=2, seed=seed, orders_per_hour=50, faults_per_vehicle_hour=4.0)
    sim = shift_then_drain(small_map, config)
    report = sim.report(0.0)
    assert sim.faults.history
    assert report.collisions == 0 and report.claim_violations == 0 and report.deadlocks == 0
    assert report.orders_open == 0 and report.orders_failed == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_carts_that_turn_on_the_spot_on_the_plant(plant_map: FacilityMap, seed: int) -> None:
    """The plant's carts made to stop and turn on the spot at 60 deg/s at every corner, 12 of
    them for 1 h under faults: no collision, no circular wait, every order finished, and the
    carts did stand to turn (minutes of it)."""
    from dataclasses import replace

    spinning = replace(plant_map, vehicle_types=(replace(plant_map.vehicle_types[0], turn_rate_deg_s=60.0),))
    config = SimConfig(vehicles=12, hours=1, seed=seed, faults_per_vehicle_hour=2.0)
    sim = shift_then_drain(spinning, config)
    report = sim.report(0.0)
    assert report.collisions == 0 and report.claim_violations == 0 and report.deadlocks == 0
    assert report.orders_open == 0 and report.orders_failed == 0
    assert sum(v.turning_s for v in sim.vehicles) > 300


@pytest.mark.parametrize("seed", range(1, 4))
def test_dense_warehouse_with_random_delays(seed: int) -> None:
    """The warehouse grid (nine one-way aisles, 124 bays) with 30 carts and faults: no collision,
    no circular wait left unbroken, every order finished once calls stop. Demand of 150 calls an
    hour, below what 30 carts carry here (about 240/h without faults: at that rate the backlog
    takes longer than the drain)."""
    config = SimConfig(vehicles=30, hours=1, seed=seed, orders_per_hour=150, faults_per_vehicle_hour=2.0)
    sim = shift_then_drain(load_map("warehouse"), config)
    report = sim.report(0.0)
    assert len(sim.faults.history) >= 30
    assert report.collisions == 0 and report.claim_violations == 0
    assert report.deadlocks_unresolved == 0
    assert report.waiting_s_by_cause.get("turn", 0) > 0, "vehicles took planned turns"
    assert report.orders_accepted > 120
    assert report.orders_open == 0 and report.orders_failed == 0


@pytest.mark.parametrize(
    ("map_name", "vehicles", "hours", "rate", "seed"), [("warehouse", 20, 0.5, 4.0, 1), ("small_test", 4, 2.0, 6.0, 3)]
)
def test_vendor_like_vda_vehicles_under_faults(
    map_name: str, vehicles: int, hours: float, rate: float, seed: int
) -> None:
    """VDA 5050 vehicles that behave as a vendor's did (stop at once on a cancel, report on
    events and every 30 s, refuse state and factsheet requests) under delays, software restarts
    that lose their orders and calls withdrawn as their vehicle drives to them: no collision, no
    claim broken, no circular wait, every order not withdrawn finished, no vehicle out of service,
    and vehicles did stop between nodes."""
    from fleet.model import OrderState
    from sim.faults import FaultKind
    from sim.fleets import VdaFleet

    config = SimConfig(
        vehicles=vehicles,
        hours=hours,
        seed=seed,
        faults_per_vehicle_hour=rate,
        protocol="vda5050",
        vda_vehicles="vendor",
    )
    sim = shift_then_drain(load_map(map_name), config)
    report = sim.report(0.0)
    kinds = [f.kind for f in sim.faults.history]
    assert kinds.count(FaultKind.RESTART) >= 3 and kinds.count(FaultKind.WITHDRAW) >= 3
    assert isinstance(sim.fleet, VdaFleet)
    assert sum(v.stops_on_lanes for v in sim.fleet.vehicles) >= 1, "a cancel stopped a vehicle on a lane"
    assert report.collisions == 0 and report.claim_violations == 0 and report.deadlocks_unresolved == 0
    assert report.orders_open == 0 and report.orders_failed == 0
    cancelled = [o for o in sim.controller.orders.values() if o.state is OrderState.CANCELLED]
    assert len(cancelled) == kinds.count(FaultKind.WITHDRAW)
    assert report.orders_finished == report.orders_accepted - len(cancelled)
    assert all(v.in_service for v in sim.controller.vehicles.values())
    lost = [a for a in sim.controller.alarms if a.code == "order-lost"]
    assert lost, "restarts lost orders, and the operator was told"
