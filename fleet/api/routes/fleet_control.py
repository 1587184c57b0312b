"""The fleet as a whole: emergency pause and admission control."""

from __future__ import annotations

from fastapi import (
    APIRouter,
)

from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    ServiceDep,
)
from fleet.api.schemas import (
    AdmissionIn,
    AdmissionOut,
    FleetPause,
)
from fleet.service import FleetService

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["fleet"])


@router.post("/fleet/pause", response_model=FleetPause, dependencies=OPERATOR)
async def pause_fleet(service: ServiceDep) -> FleetPause:
    """Emergency pause: every vehicle holds where it is; nothing is dispatched until resumed."""
    return FleetPause(paused=service.pause_fleet(True))


@router.post("/fleet/resume", response_model=FleetPause, dependencies=OPERATOR)
async def resume_fleet(service: ServiceDep) -> FleetPause:
    return FleetPause(paused=service.pause_fleet(False))


def _admission(service: FleetService) -> AdmissionOut:
    c = service.controller
    return AdmissionOut(max_working_vehicles=c.max_working, working=c.working_vehicles())


@router.get("/fleet/admission", response_model=AdmissionOut)
async def admission(service: ServiceDep) -> AdmissionOut:
    """Admission control: the limit on vehicles working on orders at once, and how many do."""
    return _admission(service)


@router.put("/fleet/admission", response_model=AdmissionOut, dependencies=OPERATOR)
async def set_admission(body: AdmissionIn, service: ServiceDep) -> AdmissionOut:
    """Set the limit (null lifts it). Where the aisles carry fewer carts than the fleet has, a
    limit keeps the fleet from jamming: `bench/throughput.py` finds one by simulation. Held-back
    vehicles stay where they are, those in the way of stations and aisles given work first.
    Lowering it takes no work away. Kept until the controller restarts (then `fleet serve
    --max-working` or FLEET_MAX_WORKING)."""
    service.set_max_working(body.max_working_vehicles)
    return _admission(service)
