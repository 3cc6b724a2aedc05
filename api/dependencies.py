"""FastAPI dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from dig_coordination.users import Principal, authenticate
from layers.database import Database
from layers.errors import Unauthorized


def _database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated[Database, Depends(_database)]


def _principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized("a bearer token is required (Authorization: Bearer TOKEN)")
    with request.app.state.database.connection("admin") as conn:
        return authenticate(conn, authorization[7:].strip())


PrincipalDep = Annotated[Principal, Depends(_principal)]
