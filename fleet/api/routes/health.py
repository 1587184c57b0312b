"""Readiness and liveness probes (open), and who a key belongs to."""

from __future__ import annotations

from fastapi import (
    APIRouter,
    Response,
    status,
)

from fleet.api.deps import (
    ReaderOrPlc,
    ServiceDep,
)
from fleet.api.schemas import (
    Health,
    Readiness,
    WhoAmI,
)
from fleet.model import OrderState

public = APIRouter(prefix="/api/v1", tags=["operations"])  # readiness probes need no key
plc_router = APIRouter(prefix="/api/v1", tags=["operations"])  # each route says who may call it


@public.get("/health", response_model=Health)
async def health(service: ServiceDep) -> Health:
    c = service.controller
    problems = service.health_problems()
    return Health(
        status="degraded" if problems else "ok",
        problems=problems,
        map=c.map.name,
        vehicles=len(c.vehicles),
        open_orders=len(c.open_orders()),
        finished_orders=sum(o.state is OrderState.FINISHED for o in c.orders.values()),
        time=c.clock.now(),
    )


@public.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(service: ServiceDep, response: Response) -> Readiness:
    """Readiness probe: 200 once storage answers and the start-up hold is over, else 503 with why."""
    problems = service.readiness()
    if problems:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(ready=not problems, problems=problems)


@plc_router.get("/whoami", response_model=WhoAmI)
async def whoami(principal: ReaderOrPlc) -> WhoAmI:
    """The role of the key presented (the control-room page hides actions from viewers)."""
    return WhoAmI(role=principal.role.label, station=principal.station)
