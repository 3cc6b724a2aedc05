"""The one mapping of errors to problem-details responses (RFC 9457).

Geoby errors become their own status and user message; request validation
errors become 400 with the offending parameters named; anything else becomes
a 500 whose body reveals nothing (the exception goes to the log only), so no
SQL text, path or credential ever reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(GeobyError, _geoby_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
