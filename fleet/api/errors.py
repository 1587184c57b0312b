"""One error shape for every refusal the API gives: RFC 9457 problem details.

`{"type", "title", "status", "detail", "field", "errors"}`: `detail` is one sentence a person can
read, `field` the path of the first field at fault (`due_at`, `query.limit`, `header.last-event-id`;
null when no field is), and `errors` every problem found, each with its field. Nothing a client
sent is echoed back whole: inputs are never repeated, and text the controller writes about them
(an unknown station's id, say) is cut to `ECHO_MAX` characters.

The validation handler matters beyond looks: FastAPI's own echoes the offending input, and a
non-finite number there (`"due_at": NaN`) makes the answer itself unencodable, a 500.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from fleet.commits import StorageFailed
from fleet.core import OrderRejected

ECHO_MAX = 120
PROBLEM_JSON = "application/problem+json"
_WHERE = {"body": "", "query": "query.", "path": "path.", "header": "header.", "cookie": "cookie."}


def cut(text: str, limit: int = ECHO_MAX) -> str:
    """`text`, shortened to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_path(loc: Sequence[Any]) -> str:
    """`("body", "due_at")` -> `due_at`; `("query", "limit")` -> `query.limit`."""
    if not loc:
        return ""
    head, *rest = (str(part) for part in loc)
    if head in _WHERE:
        return _WHERE[head] + ".".join(rest) if rest else head
    return ".".join([head, *rest])


def problem_content(
    status: int, detail: str, field: str | None = None, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """The problem-details body (`type` is about:blank: the status says what kind of problem)."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": cut(detail, 4 * ECHO_MAX),
        "field": field,
        "errors": errors if errors is not None else ([{"field": field, "message": cut(detail)}] if field else []),
    }


def problem(
    status: int, detail: str, field: str | None = None, errors: list[dict[str, str]] | None = None
) -> JSONResponse:
    """A problem-details answer."""
    return JSONResponse(
        status_code=status, content=problem_content(status, detail, field, errors), media_type=PROBLEM_JSON
    )


async def send_problem(send: Send, status: int, detail: str) -> None:
    """The same answer from a pure ASGI middleware (body limit, audit and commit)."""
    body = json.dumps(problem_content(status, detail)).encode()
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Answer validation errors, HTTP errors and refused requests with problem details."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": field_path(e.get("loc", ())), "message": cut(str(e.get("msg", "invalid")))} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return problem(422, f"{first['field']}: {first['message']}{more}", first["field"] or None, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail), getattr(exc, "field", None))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(StorageFailed)
    async def storage_failed(_: Request, exc: StorageFailed) -> JSONResponse:
        response = problem(503, f"storage unavailable: not acknowledged, nothing was done ({exc})")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(OrderRejected)
    async def rejected(_: Request, exc: OrderRejected) -> JSONResponse:
        return problem(422, cut(exc.message, 4 * ECHO_MAX), exc.field)
