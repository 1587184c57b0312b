"""FastAPI application: the routers of `fleet.api.routes` (one module per resource) over a
`FleetService`, the middleware, the error shape and the control-room page.

Concurrency: every route is `async` and awaits nothing before it has called the service, so it
runs on the loop that feeds the core, never in a worker thread: the core keeps its single writer.

Errors: every refusal is one shape, problem details (`fleet.api.errors`): a body or query that
fails validation, or a request the plant cannot serve (unknown station, no shared load type),
gets 422 naming the field; unknown ids get 404.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from fastapi import (
    FastAPI,
    Request,
)
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from fleet.api import errors
from fleet.api.admin import admin_router
from fleet.api.audit import AuditAndCommit
from fleet.api.deps import (
    VIEWER,
    get_service,
)
from fleet.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from fleet.api.maps import maps_router
from fleet.api.routes import events, fleet_control, health, monitoring, orders, traffic, vehicles
from fleet.api.security import ApiKeys, RedactKeys
from fleet.api.stations import stations_router
from fleet.service import FleetService

STATIC = Path(__file__).parent / "static"
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


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
    # Order matters only where paths overlap: none do across these modules.
    for routes in (orders, vehicles, traffic, monitoring, fleet_control, events, health):
        for name in ("router", "plc_router", "public"):
            if hasattr(routes, name):
                app.include_router(getattr(routes, name))
    app.include_router(stations_router)
    app.include_router(admin_router)
    app.include_router(maps_router)

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
