"""Fixtures of the API tests: a small simulated plant with SQLite storage, and an HTTP client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.service import FleetService
from fleet.storage import OrderStore
from maps import FacilityMap
from sim.runner import SimConfig, Simulation


@pytest.fixture
def plant(small_map: FacilityMap, tmp_path: Path) -> tuple[Simulation, FleetService]:
    sim = Simulation(small_map, SimConfig(vehicles=2, seed=3), demand_enabled=False)
    service = FleetService(sim.controller, OrderStore(tmp_path / "fleet.db"))
    sim.listeners.append(service.record)
    service.map_listeners.append(sim.use_map)  # as the demo shell does
    return sim, service


@pytest.fixture
async def client(plant: tuple[Simulation, FleetService]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(plant[1], keys=ApiKeys()))  # open, whatever the env says
    async with httpx.AsyncClient(transport=transport, base_url="http://plant") as c:
        yield c
