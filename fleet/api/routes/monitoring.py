"""Shift KPIs, alarms (acknowledged and shelved), the journal of plant events, the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import (
    APIRouter,
    HTTPException,
    Path,
    Query,
)
from fastapi.responses import HTMLResponse

from fleet.alarms import RaisedAlarm
from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    Operator,
    ServiceDep,
)
from fleet.api.schemas import (
    AlarmOut,
    AlarmSummary,
    AuditEntry,
    ErrorOut,
    JournalEntryOut,
    KpisOut,
    Overview,
    ShelveIn,
)
from fleet.report import render_html, shift_report

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["monitoring"])
AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alarm's number")]


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
    open_only: Annotated[
        bool, Query(description="only those still open (active, or cleared but unacknowledged) and not shelved")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlarmOut]:
    """Alarms, newest first (the newest 1000 are kept): one per condition, however often it was raised."""
    now = service.controller.clock.now()
    return [AlarmOut.of(a) for a in service.alarms.newest_first(open_only, now)[:limit]]


@router.get("/alarms/summary", response_model=AlarmSummary)
async def alarm_summary(service: ServiceDep) -> AlarmSummary:
    """Open alarms by severity, unacknowledged ones and shelved ones, for the header strip."""
    return AlarmSummary(**service.alarms.summary(service.controller.clock.now()))


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    response_model=AlarmOut,
    responses={404: {"model": ErrorOut}},
)
async def acknowledge_alarm(alarm_id: AlarmId, service: ServiceDep, principal: Operator) -> AlarmOut:
    """Mark an alarm seen: a latched one closes, a condition stays listed until it clears."""
    return _changed(alarm_id, lambda: service.acknowledge_alarm(alarm_id, principal.who))


@router.post(
    "/alarms/{alarm_id}/shelve",
    response_model=AlarmOut,
    responses={404: {"model": ErrorOut}},
)
async def shelve_alarm(alarm_id: AlarmId, body: ShelveIn, service: ServiceDep, principal: Operator) -> AlarmOut:
    """Take an alarm off the open list for a while (a known fault being fixed); it comes back then."""
    return _changed(alarm_id, lambda: service.shelve_alarm(alarm_id, principal.who, body.minutes))


@router.post(
    "/alarms/{alarm_id}/unshelve",
    response_model=AlarmOut,
    responses={404: {"model": ErrorOut}},
)
async def unshelve_alarm(alarm_id: AlarmId, service: ServiceDep, principal: Operator) -> AlarmOut:
    """Put a shelved alarm back on the open list now."""
    return _changed(alarm_id, lambda: service.shelve_alarm(alarm_id, principal.who, None))


def _changed(alarm_id: int, change: Callable[[], RaisedAlarm]) -> AlarmOut:
    """The alarm as `change` left it; 404 when there is no such alarm."""
    try:
        return AlarmOut.of(change())
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no alarm {alarm_id}") from None


@router.get("/overview", response_model=Overview)
async def overview(service: ServiceDep) -> Overview:
    """Late orders, blocked and troubled vehicles, open alarms by severity and the fleet's mode."""
    c, now = service.controller, service.controller.clock.now()
    open_orders = c.open_orders()
    mode = "paused" if c.fleet_paused else "starting" if c.holding else "running"
    trouble = [
        v.id for v in c.vehicles.values() if not v.online or v.errors or v.safety_stop is not None or not v.in_service
    ]
    return Overview(
        mode=mode,
        problems=service.failures(),
        open_orders=len(open_orders),
        late_orders=sum(o.due_at is not None and o.due_at < now for o in open_orders),
        vehicles=len(c.vehicles),
        vehicles_blocked=sorted(c.blocked_by_closure),
        vehicles_in_trouble=sorted(trouble),
        alarms=AlarmSummary(**service.alarms.summary(now)),
    )


@router.get("/report", response_class=HTMLResponse)
async def shift_report_page(
    service: ServiceDep,
    hours: Annotated[float, Query(gt=0, le=24 * 31, allow_inf_nan=False, description="the period up to now")] = 8.0,
) -> HTMLResponse:
    """The shift report of the last `hours` from storage, as one self-contained HTML page (the
    same as `fleet report` writes)."""
    end = service.controller.clock.now()
    start = end - hours * 3600

    def render() -> str:
        made = shift_report(service.store.orders_touched_since(start), start, end, f"{service.controller.map.name}")
        return render_html(made)

    return HTMLResponse(await asyncio.to_thread(render))


@router.get("/journal", response_model=list[JournalEntryOut])
async def journal(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JournalEntryOut]:
    """Plant events that are not alarms, newest first: lanes and zones closed and opened, limits
    changed, pauses, deadlocks broken, conditions ended (the newest 1000 are kept)."""
    return [JournalEntryOut.of(e) for e in service.alarms.journal(limit)]


@router.get("/audit", response_model=list[AuditEntry], dependencies=OPERATOR)
async def audit_log(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditEntry]:
    """State-changing requests, newest first: who (role and key fingerprint), what, when, answer."""
    return [AuditEntry(**e) for e in service.store.audit_entries(limit)]
