"""The audit log and the durability of answers, as one ASGI middleware.

Every state-changing request (POST, PUT, PATCH, DELETE), refused ones too, is written to the
audit log: who (the role of the key presented, and the key's fingerprint, never the key: a
`?key=` in the path is stored as `key=***`), what (method and path), when, and the status it got.
Requests without a valid key are counted, and only a few a minute stored (`FleetService.audit`),
so nobody who merely reaches the port can fill the disk. Its answer is held back until that
entry and everything the request changed are committed (`FleetService.committed`).

What an answer means when storage fails: a route that changes stored state (new orders and
calls, cancellations, priorities, admissions) checks the change, commits it and only then
applies it, so it either answers 503 with nothing done or its change is committed. Commands to
vehicles and the site (pause, service, park, charge, position, lanes, zones, the fleet's pause
and admission limit, alarms) are carried out at once, even while storage fails, since an
operator must always be able to stop a cart: their answer says what was done, and the order
changes they cause and their audit row are retried until committed. So a failing commit after
the route has answered never turns its answer into a 503.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs a task and a stream per
request on the one loop that also runs the core.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.api.security import current_keys, key_id, presented_key, redact
from fleet.commits import StorageFailed
from fleet.service import FleetService

log = logging.getLogger(__name__)
CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditAndCommit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGING:
            await self.app(scope, receive, send)
            return

        async def held(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._audit_and_commit(scope, message["status"])
            await send(message)

        await self.app(scope, receive, held)

    async def _audit(self, scope: Scope, status: int) -> None:
        request = Request(scope)
        service: FleetService = request.app.state.service
        key = presented_key(request)
        principal = current_keys(request.app).principal_of(key)
        who = principal.who if principal is not None else ("unknown key" if key else "no key")
        path = redact(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        service.audit(who, key_id(key), request.method, path[:500], status, known=principal is not None)

    async def _audit_and_commit(self, scope: Scope, status: int) -> None:
        await self._audit(scope, status)
        service: FleetService = scope["app"].state.service
        try:
            await service.committed()
        except StorageFailed:  # the answer stands (see above); what it left queued is retried
            log.warning(
                "%s %s answered %d; storage does not commit yet", scope["method"], redact(scope["path"]), status
            )
