"""Dependencies the API's routers share: the service, and who may call what."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from fleet.api.security import Principal, Role, require
from fleet.service import FleetService


def get_service(request: Request) -> FleetService:
    service: FleetService = request.app.state.service
    return service


ServiceDep = Annotated[FleetService, Depends(get_service)]
VIEWER = [Depends(require(Role.VIEWER))]
OPERATOR = [Depends(require(Role.OPERATOR))]
ADMIN = [Depends(require(Role.ADMIN))]
# Reads a PLC key may make too, limited by the route to what concerns the PLC's own station.
ReaderOrPlc = Annotated[Principal, Depends(require(Role.VIEWER, plc=True))]
OperatorOrPlc = Annotated[Principal, Depends(require(Role.OPERATOR, plc=True))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def station_scope(principal: Principal, *stations: str) -> None:
    """403 unless the caller may see what concerns one of `stations` (a PLC: only its own)."""
    if not principal.may_see_station(*stations):
        raise HTTPException(status_code=403, detail=f"this plc key belongs to station '{principal.station}'")
