"""FastAPI application: /api/v1 routes over a `FleetService`.

Concurrency: every route is `async` and awaits nothing before it has called the service, so it
runs on the loop that feeds the core, never in a worker thread: the core keeps its single writer.

Errors: every refusal is one shape, problem details (`fleet.api.errors`): a body or query that
fails validation, or a request the plant cannot serve (unknown station, no shared load type),
gets 422 naming the field; unknown ids get 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import (
    APIRouter,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketState

from fleet.api import errors
from fleet.api.admin import admin_router
from fleet.api.audit import AuditAndCommit
from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    Operator,
    OperatorOrPlc,
    ReaderOrPlc,
    ServiceDep,
    get_service,
    station_scope,
)
from fleet.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from fleet.api.maps import maps_router
from fleet.api.schemas import (
    AdmissionIn,
    AdmissionOut,
    AlarmOut,
    AuditEntry,
    CallCreate,
    ClosedLanes,
    ClosedZones,
    ErrorOut,
    FleetPause,
    Health,
    InitPositionIn,
    KpisOut,
    OrderCancel,
    OrderCreate,
    OrderOut,
    OrderPatch,
    PendingVehicleOut,
    Readiness,
    SendTo,
    VehicleOut,
    WhoAmI,
)
from fleet.api.security import ApiKeys, RedactKeys, current_keys, presented_key
from fleet.api.stations import stations_router
from fleet.core import OrderRejected
from fleet.model import OrderState, TaskKind, Vehicle
from fleet.service import CallConflict, FleetService
from maps.schema import map_to_wire

STATIC = Path(__file__).parent / "static"
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


router = APIRouter(prefix="/api/v1", dependencies=VIEWER)
plc_router = APIRouter(prefix="/api/v1")  # each route says who may call it: PLC keys see their own station
public = APIRouter(prefix="/api/v1")  # readiness probes need no key


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


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ErrorOut, "description": "unknown station or an order the plant cannot serve"}},
    dependencies=OPERATOR,
)
async def create_order(body: OrderCreate, service: ServiceDep, request: Request) -> OrderOut:
    """A transport order: 201 once it is committed (503, and nothing done, when storage fails)."""
    order = await service.submit_order(
        body.pickup, body.dropoff, body.load_type, body.priority, body.due_at, body.ready_at
    )
    request.state.acknowledged = True  # committed: a later audit row's failure must not deny it
    return OrderOut.of(order)


@plc_router.post(
    "/calls",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": OrderOut, "description": "a retry: the order the first call created"},
        409: {"model": ErrorOut, "description": "the idempotency key was used for another call"},
        403: {"model": ErrorOut, "description": "a plc key calling for another station"},
        422: {"model": ErrorOut, "description": "a call the plant cannot serve"},
    },
)
async def create_call(
    body: CallCreate,
    service: ServiceDep,
    response: Response,
    principal: OperatorOrPlc,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> OrderOut:
    """A PLC call: 201 with the new order once committed; the same call again (same
    Idempotency-Key header or request_id) answers 200 with the same order and creates nothing."""
    station_scope(principal, body.station)
    key = idempotency_key or body.request_id
    try:
        order, created = await service.submit_call(key, body.station, body.need, body.load_type, body.priority)
    except CallConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    request.state.acknowledged = True
    if not created:
        response.status_code = status.HTTP_200_OK
    return OrderOut.of(order)


@router.get("/map")
async def active_map(service: ServiceDep) -> dict[str, object]:
    """The active facility map in its file format, with the lanes closed right now."""
    c = service.controller
    return {**map_to_wire(c.map), "closed_lanes": sorted(c.closed_lanes), "closed_zones": sorted(c.closed_zones)}


@plc_router.get("/orders", response_model=list[OrderOut])
async def list_orders(
    service: ServiceDep,
    response: Response,
    principal: ReaderOrPlc,
    state: Annotated[list[OrderState] | None, Query(description="any of these states")] = None,
    station: Annotated[str | None, Query(description="as pick-up or drop-off")] = None,
    vehicle_id: str | None = None,
    newest_first: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OrderOut]:
    """Orders by number (or newest first), filtered, one page; X-Total-Count says how many match.
    A PLC key sees only the orders of its own station."""
    if principal.station is not None:
        station_scope(principal, station or principal.station)
        station = principal.station
    matching = service.find_orders(set(state) if state else None, station, vehicle_id, newest_first)
    response.headers["X-Total-Count"] = str(len(matching))
    return [OrderOut.of(o) for o in matching[offset : offset + limit]]


@plc_router.get("/orders/{order_id}", response_model=OrderOut, responses={404: {"model": ErrorOut}})
async def get_order(order_id: str, service: ServiceDep, principal: ReaderOrPlc) -> OrderOut:
    order = service.order(order_id)
    if order is None or not principal.may_see_station(order.pickup, order.dropoff):
        raise HTTPException(status_code=404, detail=f"no order '{order_id}'")
    return OrderOut.of(order)


def _order_or_404(service: FleetService, order_id: str) -> None:
    if service.order(order_id) is None:
        raise HTTPException(status_code=404, detail=f"no order '{order_id}'")


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut, "description": "loaded, or already ended"}},
    dependencies=OPERATOR,
)
async def cancel_order(order_id: str, service: ServiceDep, body: OrderCancel | None = None) -> OrderOut:
    """Cancel an order whose load no vehicle holds yet; a vehicle driving to it stops at its next node."""
    _order_or_404(service, order_id)
    try:
        return OrderOut.of(service.cancel_order(order_id, (body or OrderCancel()).reason))
    except OrderRejected as exc:
        raise HTTPException(status_code=409, detail=exc.message) from None


@router.patch(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    dependencies=OPERATOR,
)
async def change_order(order_id: str, body: OrderPatch, service: ServiceDep) -> OrderOut:
    """Change an open order's priority."""
    _order_or_404(service, order_id)
    try:
        return OrderOut.of(service.set_priority(order_id, body.priority))
    except OrderRejected as exc:
        raise HTTPException(status_code=409, detail=exc.message) from None


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


async def _follow(
    service: FleetService, after: int, stream: str | None, wait: bool, gone: Callable[[], Awaitable[bool]]
) -> AsyncIterator[dict[str, object]]:
    """Events after `after` (resync first if needed), then new ones as they come while `wait`."""
    seq = after
    while True:
        for event in service.events.since(seq, stream):
            yield event.as_dict(service.events.stream)
            seq, stream = event.seq, service.events.stream
        if not wait or await gone():
            return
        await asyncio.sleep(0.1)


@router.get("/events", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def events_sse(
    request: Request,
    service: ServiceDep,
    after: Annotated[int, Query(ge=0, le=10**18, description="last sequence number seen")] = 0,
    stream: Annotated[
        str | None, Query(max_length=64, description="stream id seen with it; another one means resync")
    ] = None,
    wait: Annotated[bool, Query(description="keep the stream open for new events")] = True,
    last_event_id: Annotated[str | None, Header(pattern=r"^[0-9]{1,18}$", description="as after")] = None,
) -> StreamingResponse:
    """Server-Sent Events of order, vehicle, wait and alarm changes with sequence numbers; a client
    resumes with `after` (or the Last-Event-ID header) and misses nothing."""
    start = int(last_event_id) if last_event_id else after

    async def body() -> AsyncIterator[str]:
        async for event in _follow(service, start, stream, wait, request.is_disconnected):
            yield f"id: {event['seq']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


@plc_router.get("/whoami", response_model=WhoAmI)
async def whoami(principal: ReaderOrPlc) -> WhoAmI:
    """The role of the key presented (the control-room page hides actions from viewers)."""
    return WhoAmI(role=principal.role.label, station=principal.station)


@public.websocket("/events/ws")
async def events_ws(
    websocket: WebSocket,
    after: Annotated[int, Query(ge=0, le=10**18)] = 0,
    stream: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """The same events as JSON messages over a WebSocket (viewer key as `?key=`)."""
    service: FleetService = websocket.app.state.service
    principal = current_keys(websocket.app).principal_of(presented_key(websocket))
    if principal is None or principal.station is not None:  # PLC keys get no fleet-wide stream
        await websocket.close(code=1008, reason="missing or unknown API key")
        return
    await websocket.accept()

    async def gone() -> bool:
        return websocket.client_state is not WebSocketState.CONNECTED

    try:
        async for event in _follow(service, after, stream, True, gone):
            await websocket.send_json(event)
    except WebSocketDisconnect:
        return


def create_app(service: FleetService, lifespan: Lifespan | None = None, keys: ApiKeys | None = None) -> FastAPI:
    """The API bound to one service; `lifespan` lets a shell run its loops alongside; `keys`
    default to FLEET_API_KEYS and the key file (none: open)."""
    app = FastAPI(
        title="Fleet orchestration controller",
        version="0.1.0",
        lifespan=lifespan,
        description="Transport orders, vehicles and health of one facility.",
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=int(os.environ.get("FLEET_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)))
    app.add_middleware(AuditAndCommit)  # outside the body limit: refused bodies are audited too
    app.state.keys = keys if keys is not None else ApiKeys.from_env()
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactKeys) for f in access_log.filters):
        access_log.addFilter(RedactKeys())  # keys sent as ?key= never reach the log
    app.include_router(router)
    app.include_router(plc_router)
    app.include_router(stations_router)
    app.include_router(admin_router)
    app.include_router(maps_router)
    app.include_router(public)

    errors.install(app)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"], dependencies=VIEWER)
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus metrics: orders by state, vehicles by activity, dispatch, deadlocks, alarms,
        waits by cause, VDA 5050 messages received and dropped."""
        body = get_service(request).metrics_text()
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def control_room() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
