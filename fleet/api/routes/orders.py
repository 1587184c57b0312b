"""Transport orders and PLC calls: create (checked, committed, then applied), list, get, cancel, re-prioritise."""

from __future__ import annotations

from typing import Annotated

from fastapi import (
    APIRouter,
    Header,
    HTTPException,
    Query,
    Response,
    status,
)

from fleet.api.deps import (
    OPERATOR,
    VIEWER,
    OperatorOrPlc,
    ReaderOrPlc,
    ServiceDep,
    station_scope,
)
from fleet.api.schemas import (
    CallCreate,
    ErrorOut,
    OrderCancel,
    OrderCreate,
    OrderOut,
    OrderPatch,
)
from fleet.core import OrderRejected
from fleet.model import OrderState
from fleet.service import CallConflict, FleetService

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["orders"])
plc_router = APIRouter(prefix="/api/v1", tags=["orders"])  # each route says who may call it: PLC keys see their own


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": ErrorOut, "description": "unknown station or an order the plant cannot serve"}},
    dependencies=OPERATOR,
)
async def create_order(body: OrderCreate, service: ServiceDep) -> OrderOut:
    """A transport order: 201 once it is committed (503, and nothing done, when storage fails)."""
    order = await service.submit_order(
        body.pickup, body.dropoff, body.load_type, body.priority, body.due_at, body.ready_at
    )
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
    if not created:
        response.status_code = status.HTTP_200_OK
    return OrderOut.of(order)


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
        return OrderOut.of(await service.cancel_order(order_id, (body or OrderCancel()).reason))
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
        return OrderOut.of(await service.set_priority(order_id, body.priority))
    except OrderRejected as exc:
        raise HTTPException(status_code=409, detail=exc.message) from None
