"""FastAPI dependencies shared by the routes.

Authentication is ``Authorization: Bearer TOKEN`` (:mod:`dig_coordination.users`).
Failed authentications are counted per client address (:mod:`api.ratelimit`):
an address over the limit gets 429 before its token is looked up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api import ratelimit
from dig_coordination.users import Principal, authenticate
from layers.database import Database
from layers.errors import Unauthorized


def _database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(_database)]


def _principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    limiter = ratelimit.limiter_for(request.app)
    address = ratelimit.client_address(request)
    wait = limiter.retry_after(address)
    if wait is not None:
        raise ratelimit.too_many(wait)
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("a bearer token is required (Authorization: Bearer TOKEN)")
    try:
        with request.app.state.database.connection("admin") as conn:
            return authenticate(conn, authorization[7:].strip())
    except Unauthorized:
        limiter.failed(address)
        raise


PrincipalDep = Annotated[Principal, Depends(_principal)]
