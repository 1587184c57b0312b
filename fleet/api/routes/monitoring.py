"""Shift KPIs, alarms and their acknowledgement, the audit log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import (
    APIRouter,
    HTTPException,
    Query,
)

from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    Operator,
    ServiceDep,
)
from fleet.api.schemas import (
    AlarmOut,
    AuditEntry,
    ErrorOut,
    KpisOut,
)

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["monitoring"])


@router.get("/kpis", response_model=KpisOut)
async def kpis(
    service: ServiceDep,
    window_s: Annotated[
        float, Query(gt=0, le=86_400, allow_inf_nan=False, description="how far back, seconds (default a shift)")
    ] = 8 * 3600,
) -> KpisOut:
    """Orders finished (per hour and in bins for a chart), lead time, utilisation, waiting by cause."""
    return KpisOut(**asdict(service.kpis(window_s)))


@router.get("/alarms", response_model=list[AlarmOut])
async def list_alarms(
    service: ServiceDep,
    open_only: Annotated[bool, Query(description="only those not acknowledged yet")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlarmOut]:
    """Alarms, newest first (the newest 1000 are kept)."""
    return [AlarmOut.of(a) for a in service.alarms.newest_first(open_only)[:limit]]


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    response_model=AlarmOut,
    responses={404: {"model": ErrorOut}},
)
async def acknowledge_alarm(alarm_id: int, service: ServiceDep, principal: Operator) -> AlarmOut:
    try:
        return AlarmOut.of(service.acknowledge_alarm(alarm_id, principal.who))
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no alarm {alarm_id}") from None


@router.get("/audit", response_model=list[AuditEntry], dependencies=OPERATOR)
async def audit_log(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditEntry]:
    """State-changing requests, newest first: who (role and key fingerprint), what, when, answer."""
    return [AuditEntry(**e) for e in service.store.audit_entries(limit)]
