"""The audit log and the durability of answers, as one ASGI middleware.

Every state-changing request (POST, PUT, PATCH, DELETE), refused ones too, is written to the
audit log: who (the role of the key presented, and the key's fingerprint, never the key), what
(method and path), when, and the status it got. Its answer is held back until that entry and
everything the request changed are committed (`FleetService.committed`): a caller is never told
"done" about something storage does not hold. Should the commit fail, the caller gets 503
instead of its answer.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs a task and a stream per
request on the one loop that also runs the core.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.api.security import ApiKeys, key_id, presented_key
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
        failed = False

        async def held(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start":
                failed = not await self._audit_and_commit(scope, message["status"])
                if failed:
                    body = json.dumps({"detail": "storage unavailable: nothing was acknowledged"}).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 503,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            elif failed:
                return  # the original body of an answer replaced by 503
            await send(message)

        await self.app(scope, receive, held)

    async def _audit_and_commit(self, scope: Scope, status: int) -> bool:
        request = Request(scope)
        service: FleetService = request.app.state.service
        keys: ApiKeys = request.app.state.keys
        key = presented_key(request)
        principal = keys.principal_of(key)
        who = principal.who if principal is not None else ("unknown key" if key else "no key")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        now = service.controller.clock.now()
        service.commits.later(service.store.audit_write(now, who, key_id(key), request.method, path, status))
        try:
            await service.committed()
        except Exception:
            log.exception("commit failed; %s %s answered 503", request.method, path)
            return False
        return True
