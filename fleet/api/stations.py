"""/api/v1/stations: the plant's stations with their open orders and PLC calls.

A PLC key reads its own station only; viewers and up read all.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException

from fleet.api.deps import Operator, ReaderOrPlc, ServiceDep, station_scope
from fleet.api.schemas import CallOut, CellOut, ErrorOut, OrderOut, StationOut
from fleet.cells import CellHandshake
from fleet.service import FleetService

stations_router = APIRouter(prefix="/api/v1", tags=["stations"])


def _station_out(service: FleetService, station_id: str) -> StationOut:
    station = service.controller.map.station_by_id[station_id]
    return StationOut(
        id=station.id,
        node=station.node,
        kind=station.kind.value,
        load_types=sorted(station.load_types),
        open_orders=[OrderOut.of(o) for o in service.open_orders_at(station.id)],
        calls=[
            CallOut(idempotency_key=c.idempotency_key, order_id=c.order_id, created_at=c.created_at)
            for c in service.store.calls_of(station.id, limit=20)
        ],
        cell=_cell_out(service.cell(station.id)),
    )


def _cell_out(cell: CellHandshake | None) -> CellOut | None:
    if cell is None:
        return None
    state = cell.state.value if cell.state else None
    return CellOut(vehicle_id=cell.vehicle_id, state=state, waiting_for_operator=cell.waiting_for_operator)


@stations_router.get("/stations", response_model=list[StationOut])
async def list_stations(service: ServiceDep, principal: ReaderOrPlc) -> list[StationOut]:
    """Every station (a PLC key: its own) with its open orders and newest calls."""
    ids = [s.id for s in service.controller.map.stations if principal.may_see_station(s.id)]
    return [_station_out(service, sid) for sid in ids]


@stations_router.get("/stations/{station_id}", response_model=StationOut, responses={404: {"model": ErrorOut}})
async def get_station(station_id: str, service: ServiceDep, principal: ReaderOrPlc) -> StationOut:
    station_scope(principal, station_id)
    if station_id not in service.controller.map.station_by_id:
        raise HTTPException(status_code=404, detail=f"no station '{station_id}'")
    return _station_out(service, station_id)


@stations_router.post(
    "/stations/{station_id}/transfer/{decision}",
    response_model=CellOut,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def decide_transfer(
    station_id: str, decision: Literal["retry", "abort"], service: ServiceDep, principal: Operator
) -> CellOut:
    """After a robot cell failed or timed out a transfer (alarm `transfer-failed`; the vehicle
    waits at the station): ask the cell again (`retry`), or give the transfer up (`abort`: the
    order fails, the load stays where it is)."""
    try:
        cell = service.transfer(station_id, retry=decision == "retry", by=principal.who)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no robot cell serves station '{station_id}'") from None
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    out = _cell_out(cell)
    assert out is not None
    return out
