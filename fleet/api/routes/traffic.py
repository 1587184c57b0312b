"""The facility map in use, and lanes and zones closed or opened at run time."""

from __future__ import annotations

from fastapi import (
    APIRouter,
    HTTPException,
)

from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    ServiceDep,
)
from fleet.api.schemas import (
    ClosedLanes,
    ClosedZones,
    ErrorOut,
)
from fleet.service import FleetService
from maps.schema import map_to_wire

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["traffic"])


@router.get("/map")
async def active_map(service: ServiceDep) -> dict[str, object]:
    """The active facility map in its file format, with the lanes closed right now."""
    c = service.controller
    return {**map_to_wire(c.map), "closed_lanes": sorted(c.closed_lanes), "closed_zones": sorted(c.closed_zones)}


@router.post(
    "/lanes/{lane_id}/close", response_model=ClosedLanes, responses={404: {"model": ErrorOut}}, dependencies=OPERATOR
)
async def close_lane(lane_id: str, service: ServiceDep) -> ClosedLanes:
    """Close a lane: new routes avoid it; a vehicle already on it drives through first."""
    _lane_or_404(service, lane_id)
    return ClosedLanes(closed=service.close_lane(lane_id, True))


@router.post(
    "/lanes/{lane_id}/open", response_model=ClosedLanes, responses={404: {"model": ErrorOut}}, dependencies=OPERATOR
)
async def open_lane(lane_id: str, service: ServiceDep) -> ClosedLanes:
    _lane_or_404(service, lane_id)
    return ClosedLanes(closed=service.close_lane(lane_id, False))


@router.get("/lanes/closed", response_model=ClosedLanes)
async def closed_lanes(service: ServiceDep) -> ClosedLanes:
    return ClosedLanes(closed=sorted(service.controller.closed_lanes))


@router.post(
    "/zones/{zone_id}/close", response_model=ClosedZones, responses={404: {"model": ErrorOut}}, dependencies=OPERATOR
)
async def close_zone(zone_id: str, service: ServiceDep) -> ClosedZones:
    """Close a zone (a manual forklift area, a blocked fire door): every lane crossing it closes;
    a vehicle already released into it drives through first."""
    _zone_or_404(service, zone_id)
    return ClosedZones(closed=service.close_zone(zone_id, True))


@router.post(
    "/zones/{zone_id}/open", response_model=ClosedZones, responses={404: {"model": ErrorOut}}, dependencies=OPERATOR
)
async def open_zone(zone_id: str, service: ServiceDep) -> ClosedZones:
    _zone_or_404(service, zone_id)
    return ClosedZones(closed=service.close_zone(zone_id, False))


@router.get("/zones/closed", response_model=ClosedZones)
async def closed_zones(service: ServiceDep) -> ClosedZones:
    return ClosedZones(closed=sorted(service.controller.closed_zones))


def _zone_or_404(service: FleetService, zone_id: str) -> None:
    if zone_id not in {z.id for z in service.controller.map.zones}:
        raise HTTPException(status_code=404, detail=f"no zone '{zone_id}'")


def _lane_or_404(service: FleetService, lane_id: str) -> None:
    if lane_id not in service.controller.map.lane_by_id:
        raise HTTPException(status_code=404, detail=f"no lane '{lane_id}'")
