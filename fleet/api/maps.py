"""/api/v1/maps: upload, validate, list and activate facility maps (admin; validating: operator).

An uploaded map is checked whole (file schema and plant rules) and refused with every problem
listed. A valid map is kept and becomes the active one: in use at once when no vehicle moves or
works on an order, otherwise at the next start of the controller (between shifts); the answer
says which, and why.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, status
from fastapi.responses import JSONResponse

from fleet.api.deps import OPERATOR, Admin, ServiceDep
from fleet.api.errors import problem_content
from fleet.api.schemas import ErrorOut, MapActivation, MapProblems, MapStored
from fleet.storage import StoredMap
from maps import MapValidationError, parse_map

maps_router = APIRouter(prefix="/api/v1", tags=["maps"])
MapId = Annotated[int, Path(ge=1, le=2**63 - 1, description="id of an uploaded map")]  # a database integer
MapBody = Body(description="a facility map in the native file format (as GET /api/v1/map gives it)")


def _stored_out(stored: StoredMap) -> MapStored:
    return MapStored.model_validate(stored, from_attributes=True)


def _problems(exc: MapValidationError) -> JSONResponse:
    detail = f"the map has {len(exc.problems)} problem(s)"
    errors = [{"field": "map", "message": p} for p in exc.problems]
    return JSONResponse(
        status_code=422, content={**problem_content(422, detail, None, errors), "problems": exc.problems}
    )


@maps_router.post(
    "/maps/validate",
    response_model=MapProblems,
    responses={422: {"model": MapProblems}},
    dependencies=OPERATOR,
)
async def validate_map(data: dict[str, Any] = MapBody) -> MapProblems | JSONResponse:
    """Check a map without keeping it: 200 with no problems, or 422 listing every one."""
    try:
        fmap = parse_map(data, source="uploaded map")
    except MapValidationError as exc:
        return _problems(exc)
    return MapProblems(detail=f"map {fmap.name} is valid", problems=[])


@maps_router.post(
    "/maps",
    response_model=MapActivation,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": MapProblems}},
)
async def upload_map(
    service: ServiceDep, principal: Admin, data: dict[str, Any] = MapBody
) -> MapActivation | JSONResponse:
    """Upload a map; kept and made active if valid (see the module description for when it is in use)."""
    try:
        stored, blockers = service.upload_map(data, principal.who)
    except MapValidationError as exc:
        return _problems(exc)
    return MapActivation(map=_stored_out(stored), in_use=not blockers, waiting_for=blockers)


@maps_router.get("/maps", response_model=list[MapStored])
async def list_maps(service: ServiceDep, _: Admin) -> list[MapStored]:
    """Maps uploaded through the API, newest first."""
    return [_stored_out(m) for m in service.store.maps()]


@maps_router.post("/maps/{map_id}/activate", response_model=MapActivation, responses={404: {"model": ErrorOut}})
async def activate_map(map_id: MapId, service: ServiceDep, _: Admin) -> MapActivation:
    """Make an uploaded map the active one again (to go back to an earlier map)."""
    try:
        stored, blockers = service.activate_map(map_id)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no map {map_id}") from None
    return MapActivation(map=_stored_out(stored), in_use=not blockers, waiting_for=blockers)
