"""Simulated robot cells (`sim/cells.py`) in a simulation: a pick at a cell station waits for
the cell's transfer; a failing cell holds the vehicle there until the operator aborts."""

from __future__ import annotations

import pytest

from fleet.model import OrderState
from maps import FacilityMap
from sim.runner import SimConfig, Simulation


def test_the_cart_leaves_the_cell_only_after_its_transfer(small_map: FacilityMap) -> None:
    sim = Simulation(
        small_map, SimConfig(vehicles=1, seed=3, cells=("ST-A",), cell_transfer_s=60), demand_enabled=False
    )
    order = sim.controller.submit_order("ST-A", "ST-B")
    sim.run_for(900)
    done = sim.controller.orders[order.id]
    assert done.state is OrderState.FINISHED
    loading, leaving = done.entered(OrderState.LOADING), done.entered(OrderState.TO_DROPOFF)
    assert loading is not None and leaving is not None and leaving - loading >= 60, (
        "the cell's 60 s, not the station's 15"
    )
    assert sim.oracle.collisions == []


def test_a_failing_cell_holds_the_cart_until_the_operator_aborts(small_map: FacilityMap) -> None:
    config = SimConfig(vehicles=1, seed=3, cells=("ST-A",), cell_failure_rate=1.0, cell_transfer_s=20)
    sim = Simulation(small_map, config, demand_enabled=False)
    order = sim.controller.submit_order("ST-A", "ST-B")
    sim.run_for(600)
    assert sim.controller.orders[order.id].state is OrderState.LOADING
    assert [a.code for a in sim.controller.alarms].count("transfer-failed") == 1, "one alarm while it waits"
    assert sim.cells is not None and sim.cells.cells["ST-A"].waiting_for_operator
    sim.cells.retry_transfer("ST-A")
    sim.run_for(60)
    assert [a.code for a in sim.controller.alarms].count("transfer-failed") == 2
    sim.cells.abort_transfer("ST-A", "operator")
    sim.run_for(5)
    failed = sim.controller.orders[order.id]
    assert failed.state is OrderState.FAILED and failed.reason is not None and "aborted by operator" in failed.reason
    assert sim.controller.vehicles["AGV-01"].loads == ()


def test_cells_at_unknown_stations_are_refused(small_map: FacilityMap) -> None:
    with pytest.raises(ValueError, match="GHOST"):
        Simulation(small_map, SimConfig(vehicles=1, cells=("GHOST",)), demand_enabled=False)
