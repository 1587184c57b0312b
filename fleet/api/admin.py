"""/api/v1/keys: API keys managed by an admin (the same key file as `fleet keys`).

A new key is shown once in the answer; the key file keeps only its salted hash. The running
controller takes the change at once (its key set is read again from the file).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request, status

from fleet.api.deps import ADMIN, Admin, ServiceDep
from fleet.api.schemas import ErrorOut, KeyCreate, KeyCreated, KeyOut
from fleet.api.security import ApiKeys, KeyFile, Role, StoredKey

admin_router = APIRouter(prefix="/api/v1", tags=["admin"], dependencies=ADMIN)


def _key_file(request: Request) -> KeyFile:
    keys: ApiKeys = request.app.state.keys
    if keys.file is None:
        raise HTTPException(status_code=409, detail="no key file configured (FLEET_API_KEY_FILE): keys are fixed")
    return KeyFile(keys.file)


def _reload(request: Request) -> None:
    keys: ApiKeys = request.app.state.keys
    assert keys.file is not None
    request.app.state.keys = keys.with_file(keys.file)


def _key_out(stored: StoredKey) -> KeyOut:
    return KeyOut(id=stored.id, role=stored.role.label, station=stored.station, created_at=stored.created_at)


@admin_router.get("/keys", response_model=list[KeyOut], responses={409: {"model": ErrorOut}})
async def list_keys(request: Request) -> list[KeyOut]:
    """The keys in the key file, without the keys."""
    return [_key_out(k) for k in _key_file(request).load()]


@admin_router.post(
    "/keys",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def create_key(body: KeyCreate, request: Request, service: ServiceDep, _: Admin) -> KeyCreated:
    """A new random key; a plc key names the one station it may call for."""
    role = Role.named(body.role)
    if (role is Role.PLC) != (body.station is not None):
        raise HTTPException(status_code=422, detail="station: required for a plc key, and only for one")
    if body.station is not None and body.station not in service.controller.map.station_by_id:
        raise HTTPException(status_code=422, detail=f"station: unknown station '{body.station}'")
    stored, key = _key_file(request).add(role, time.time(), body.station)
    _reload(request)
    return KeyCreated(**_key_out(stored).model_dump(), key=key)


@admin_router.delete("/keys/{key_id}", status_code=204, responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}})
async def delete_key(key_id: str, request: Request) -> None:
    """Remove a key; requests with it are refused from now on."""
    if not _key_file(request).remove(key_id):
        raise HTTPException(status_code=404, detail=f"no key '{key_id}'")
    _reload(request)
