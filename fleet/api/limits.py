"""A limit on request body size, as ASGI middleware: a body over the limit gets 413 before any
endpoint reads it (by its Content-Length), or as soon as a streamed body passes the limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.api.errors import send_problem

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: a map file is the largest body the API takes


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        over = False

        async def counted() -> Message:
            # Past the limit the app gets the body cut off (no more parts); its answer is
            # replaced by 413 below.
            nonlocal seen, over
            if over:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def watched(message: Message) -> None:
            if not over:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._refuse(send)

        await self.app(scope, counted, watched)

    async def _refuse(self, send: Send) -> None:
        await send_problem(send, 413, f"request body over {self.max_bytes} bytes")
