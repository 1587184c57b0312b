"""Vehicles: list and detail, operator commands (pause, service, park, charge, position), pending
vehicles and their admission, vehicle profiles."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import (
    APIRouter,
    HTTPException,
)

from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    Operator,
    ServiceDep,
)
from fleet.api.schemas import (
    ErrorOut,
    InitPositionIn,
    LoadDecisionIn,
    PendingVehicleOut,
    SendTo,
    VehicleOut,
)
from fleet.core import OrderRejected
from fleet.model import TaskKind, Vehicle
from fleet.service import FleetService

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["vehicles"])


@router.get("/vehicles", response_model=list[VehicleOut])
async def list_vehicles(service: ServiceDep) -> list[VehicleOut]:
    return [_vehicle_out(service, v) for v in service.vehicles()]


@router.get("/vehicles/{vehicle_id}", response_model=VehicleOut, responses={404: {"model": ErrorOut}})
async def get_vehicle(vehicle_id: str, service: ServiceDep) -> VehicleOut:
    """One vehicle: position, battery, task and order, why it waits, base and horizon, mode, errors."""
    vehicle = service.vehicle(vehicle_id)
    if vehicle is None:
        raise HTTPException(status_code=404, detail=f"no vehicle '{vehicle_id}'")
    return _vehicle_out(service, vehicle)


@router.get("/vehicle-profiles")
async def vehicle_profiles(service: ServiceDep) -> dict[str, object]:
    """The vehicle profiles and fleet `fleet serve --vehicles` was given (empty: none): per
    vendor the VDA 5050 version, map ids, action parameters and quirks with their reasons."""
    profiles = service.vehicle_profiles
    return profiles.model_dump(mode="json") if profiles is not None else {}


@router.get("/pending-vehicles", response_model=list[PendingVehicleOut])
async def pending_vehicles(service: ServiceDep) -> list[PendingVehicleOut]:
    """Vehicles that reported in but are not in the fleet (configured with `fleet serve
    --vehicle`, or admitted): their messages are dropped until an operator admits them."""
    return [PendingVehicleOut.model_validate(p, from_attributes=True) for p in service.pending_vehicles()]


@router.post(
    "/pending-vehicles/{serial_number}/admit",
    response_model=PendingVehicleOut,
    responses={404: {"model": ErrorOut}},
)
async def admit_vehicle(serial_number: str, service: ServiceDep, principal: Operator) -> PendingVehicleOut:
    """Admit a pending vehicle into the fleet (kept across restarts): it is asked for its state
    and placed where it reports to stand."""
    try:
        admitted = await service.admit_vehicle(serial_number, principal.who)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no pending vehicle '{serial_number}'") from None
    return PendingVehicleOut.model_validate(admitted, from_attributes=True)


def _vehicle_out(service: FleetService, vehicle: Vehicle) -> VehicleOut:
    return VehicleOut.of(vehicle, service.wait_reason(vehicle.id), service.path_ahead(vehicle.id))


def _vehicle_or_404(service: FleetService, vehicle_id: str) -> None:
    if service.vehicle(vehicle_id) is None:
        raise HTTPException(status_code=404, detail=f"no vehicle '{vehicle_id}'")


@router.post(
    "/vehicles/{vehicle_id}/pause",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def pause_vehicle(vehicle_id: str, service: ServiceDep) -> VehicleOut:
    """The vehicle holds where it is (VDA 5050 startPause) and gets no new work."""
    return _vehicle_command(service, vehicle_id, lambda: service.pause_vehicle(vehicle_id, True))


@router.post(
    "/vehicles/{vehicle_id}/resume",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def resume_vehicle(vehicle_id: str, service: ServiceDep) -> VehicleOut:
    return _vehicle_command(service, vehicle_id, lambda: service.pause_vehicle(vehicle_id, False))


def _vehicle_command(service: FleetService, vehicle_id: str, action: Callable[[], Vehicle]) -> VehicleOut:
    _vehicle_or_404(service, vehicle_id)
    try:
        return _vehicle_out(service, action())
    except OrderRejected as exc:
        if exc.field == "vehicle_id":
            raise HTTPException(status_code=409, detail=exc.message) from None
        raise


@router.post(
    "/vehicles/{vehicle_id}/out-of-service",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def out_of_service(vehicle_id: str, service: ServiceDep) -> VehicleOut:
    """No new work; a load it carries is delivered; orders it has not loaded go to others."""
    return _vehicle_command(service, vehicle_id, lambda: service.set_in_service(vehicle_id, False))


@router.post(
    "/vehicles/{vehicle_id}/in-service",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def in_service(vehicle_id: str, service: ServiceDep) -> VehicleOut:
    return _vehicle_command(service, vehicle_id, lambda: service.set_in_service(vehicle_id, True))


@router.post(
    "/vehicles/{vehicle_id}/park",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def send_to_parking(vehicle_id: str, service: ServiceDep, body: SendTo | None = None) -> VehicleOut:
    """Send an idle vehicle to a parking spot (the nearest free one unless `place_id` says)."""
    place = (body or SendTo()).place_id
    return _vehicle_command(service, vehicle_id, lambda: service.send_to(vehicle_id, TaskKind.PARK, place))


@router.post(
    "/vehicles/{vehicle_id}/charge",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def send_to_charger(vehicle_id: str, service: ServiceDep, body: SendTo | None = None) -> VehicleOut:
    """Send an idle vehicle to a charger (the nearest free one unless `place_id` says)."""
    place = (body or SendTo()).place_id
    return _vehicle_command(service, vehicle_id, lambda: service.send_to(vehicle_id, TaskKind.CHARGE, place))


@router.post(
    "/vehicles/{vehicle_id}/init-position",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def init_position(vehicle_id: str, body: InitPositionIn, service: ServiceDep) -> VehicleOut:
    """Tell an idle vehicle where it really stands (VDA 5050 initPosition); 422 names the field at fault."""
    _vehicle_or_404(service, vehicle_id)
    return _vehicle_out(service, service.init_position(vehicle_id, body.node))


@router.post(
    "/vehicles/{vehicle_id}/load-decision",
    response_model=VehicleOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def decide_load(vehicle_id: str, body: LoadDecisionIn, service: ServiceDep) -> VehicleOut:
    """Decide a load mismatch (its `load_mismatch`): trust the record or the vehicle's report;
    409 when it has none to decide."""
    return _vehicle_command(service, vehicle_id, lambda: service.decide_load(vehicle_id, body.trust))
