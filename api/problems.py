"""The one mapping of errors to problem-details responses (RFC 9457).

Geoby errors become their own status and user message; request validation
errors become 400 with the offending parameters named; anything else becomes
a 500 whose body reveals nothing (the exception goes to the log only), so no
SQL text, path or credential ever reaches a client.

:func:`document` makes the OpenAPI document say so: FastAPI declares a 422
``HTTPValidationError`` on every route with parameters, which this handler
never sends; the document instead declares the problem-details answers each
operation can give (400 for bad input, 401 and 403 where a token is read, 404
where a path names an object), so clients and contract tests see what the
server really answers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layers.errors import GeobyError, InvalidInput, NotFound, problem_details

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(exc: BaseException, request: Request) -> JSONResponse:
    """A problem-details JSON response for ``exc``."""
    doc = problem_details(exc, instance=request.url.path)
    return JSONResponse(doc, status_code=doc["status"], media_type=PROBLEM_JSON)


async def _geoby_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GeobyError)
    level = logging.ERROR if exc.status >= 500 else logging.INFO
    log.log(level, "%s %s: %s | %s", request.method, request.url.path, exc, exc.log_detail or "")
    return problem_response(exc, request)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    named = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        InvalidInput(named or "invalid request", extra={"errors": errors}), request
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem_response(NotFound(f"nothing at {request.url.path}"), request)
    doc = {
        "type": "about:blank",
        "title": str(exc.detail),
        "status": exc.status_code,
        "instance": request.url.path,
    }
    return JSONResponse(doc, status_code=exc.status_code, media_type=PROBLEM_JSON,
                        headers=getattr(exc, "headers", None))  # fmt: skip


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(exc, request)


RETRY_AFTER_S = 2


class RetryAfter:
    """ASGI middleware: every 503 answer says when to retry (``Retry-After``, RFC 9110).

    A 503 means the database is away (restarting, crashed) or its pool is
    exhausted: the request was not carried out and may be sent again. The
    header marks it retryable, whichever part of the app answered (these
    handlers, or pygeoapi's exception documents under /ogc).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app`` and document their answers in its OpenAPI."""
    app.add_middleware(RetryAfter)  # every 503 is marked retryable
    app.add_exception_handler(GeobyError, _geoby_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `field` names the input at fault.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string"},
        "record": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEMS = {
    "400": "Invalid input: a parameter or the body is malformed or out of range.",
    "401": "No valid bearer token.",
    "403": "The token's role may not do this.",
    "404": "The object named does not exist or is not visible to the caller.",
    "409": "The request conflicts with the object's current state.",
}


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem-details responses of every operation in ``openapi`` (in place).

    FastAPI's 422 ``HTTPValidationError`` becomes a 400 problem (what
    :func:`_validation_error` answers); an operation reading the
    ``Authorization`` header also answers 401 and 403, one with path
    parameters 404. Responses a route declares itself are kept.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _declare(operation)
    return openapi


def _declare(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    parameters = operation.get("parameters", [])
    codes = set()
    if responses.pop("422", None) is not None or parameters or "requestBody" in operation:
        codes.add("400")
    if any(p.get("in") == "header" and p.get("name", "").lower() == "authorization"
           for p in parameters):  # fmt: skip
        codes.update(("401", "403"))
    if any(p.get("in") == "path" for p in parameters):
        codes.add("404")
    for code in sorted(codes):
        responses.setdefault(code, _problem(_PROBLEMS[code]))


def declared(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering problem details with ``codes`` beyond the usual.

    ``descriptions`` by code as ``_404="..."`` say when; the default is the generic one.
    """
    # The schema inline: a route's own responses must not depend on document() having run.
    return {code: _problem(descriptions.get(f"_{code}", _PROBLEMS.get(str(code), "An error.")),
                           PROBLEM_SCHEMA)
            for code in codes}  # fmt: skip


def _problem(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = schema or {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}
