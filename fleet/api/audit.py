"""The audit log and the durability of answers, as one ASGI middleware.

Every state-changing request (POST, PUT, PATCH, DELETE), refused ones too, is written to the
audit log: who (the role of the key presented, and the key's fingerprint, never the key: a
`?key=` in the path is stored as `key=***`), what (method and path), when, and the status it got.
Requests without a valid key are counted, and only a few a minute stored (`FleetService.audit`),
so nobody who merely reaches the port can fill the disk. Its answer is held back until that
entry and everything the request changed are committed (`FleetService.committed`): a caller is
never told "done" about something storage does not hold. Should the commit fail, the caller gets
503 instead of its answer (unless the route had committed its own change first: new orders and
calls are checked, committed and only then applied). While storage does not commit, every
state-changing request is refused with 503 before it reaches the core.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs a task and a stream per
request on the one loop that also runs the core.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.api.errors import send_problem
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
        service: FleetService = scope["app"].state.service
        if service.commits.failing is not None:
            # Storage does not commit: new work is refused before it reaches the core, so that
            # nothing is done that cannot be acknowledged (the audit row is kept and retried).
            await self._audit(scope, 503)
            await send_problem(send, 503, f"storage unavailable: refused, nothing was done ({service.commits.failing})")
            return
        failed = False

        async def held(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start":
                failed = not await self._audit_and_commit(scope, message["status"])
                if failed:
                    await send_problem(send, 503, "storage unavailable: not acknowledged")
                    return
            elif failed:
                return  # the original body of an answer replaced by 503
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

    async def _audit_and_commit(self, scope: Scope, status: int) -> bool:
        await self._audit(scope, status)
        service: FleetService = scope["app"].state.service
        try:
            await service.committed()
        except StorageFailed:
            if status >= 400 or scope.get("state", {}).get("acknowledged"):
                return True  # a refusal, or its change is committed already: the audit row is retried
            log.error("commit failed; %s %s answered 503", scope["method"], redact(scope["path"]))
            return False
        return True
