"""The audit log stays bounded: rows older than the retention or beyond the row limit are cut,
and requests without a valid key are counted but only a few a minute stored."""

from __future__ import annotations

import httpx

from fleet import service as service_module
from fleet.api import create_app
from fleet.api.security import ApiKeys
from fleet.service import FleetService
from sim.runner import Simulation


async def test_unauthenticated_requests_are_counted_and_few_stored(plant: tuple[Simulation, FleetService]) -> None:
    """200 keyless POSTs within a minute: all counted, 60 stored; a keyed one is stored still."""
    _, service = plant
    app = create_app(service, keys=ApiKeys.parse("operator:op-key"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://plant") as client:
        for _ in range(200):
            assert (await client.post("/api/v1/orders", json={"from": "ST-A", "to": "ST-B"})).status_code == 401
        keyed = await client.post("/api/v1/fleet/pause", headers={"X-API-Key": "op-key"})
        assert keyed.status_code == 200
    await service.committed()
    assert service.unauthenticated == 200 and service.unauthenticated_not_stored == 140
    rows = service.store.audit_entries(1000)
    assert sum(r["who"] == "no key" for r in rows) == service_module.AUDIT_UNKNOWN_PER_MIN
    assert rows[0]["path"] == "/api/v1/fleet/pause" and rows[0]["who"] == "operator"
    assert "fleet_api_unauthenticated_not_stored_total 140" in service.metrics_text()


async def test_the_audit_log_is_cut_by_age_and_size(plant: tuple[Simulation, FleetService]) -> None:
    """With a limit of 50 rows and a pruning every 100, 250 rows leave the 50 newest at the last
    pruning plus those written since; rows older than the retention go at the next pruning."""
    sim, service = plant
    service.audit_max_rows = 50
    original = service_module.AUDIT_PRUNE_EVERY
    service_module.AUDIT_PRUNE_EVERY = 100
    try:
        app = create_app(service, keys=ApiKeys())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://plant") as client:
            for k in range(250):
                await client.post("/api/v1/lanes/A1-A2/" + ("close" if k % 2 == 0 else "open"))
            await service.committed()
            assert service.store.audit_count() == 50 + 50, "cut to 50 at row 200, 50 written since"
            newest = service.store.audit_entries(1)[0]["id"]
            sim.run_for(3 * 86_400 / 1000)  # a little simulated time passes
            service.audit_days = 0.0  # everything before now is past its retention
            for k in range(100):
                await client.post("/api/v1/lanes/A1-A2/" + ("close" if k % 2 == 0 else "open"))
            await service.committed()
        remaining = service.store.audit_entries(1000)
        assert all(r["id"] > newest for r in remaining), "the old rows went by age"
        assert len(remaining) == 50 + 50, "cut at row 300 to its 50 since the run, 50 written after"
    finally:
        service_module.AUDIT_PRUNE_EVERY = original
