"""Order, vehicle, wait and alarm changes as Server-Sent Events and over a WebSocket, with resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import (
    APIRouter,
    Header,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketState

from fleet.api.deps import (
    VIEWER,
    ServiceDep,
)
from fleet.api.security import current_keys, presented_key
from fleet.service import FleetService

router = APIRouter(prefix="/api/v1", dependencies=VIEWER, tags=["events"])
public = APIRouter(prefix="/api/v1", tags=["events"])  # the WebSocket checks its key itself


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
