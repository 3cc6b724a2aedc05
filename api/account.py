"""The caller's own account (``/api/me``): who am I, and revoke the token I use.

=========================  ===================================================
route                      what
=========================  ===================================================
``GET /api/me``            user, organisation, role, token prefix and expiry
``DELETE /api/me/token``   revoke the token of this request (204); audited
=========================  ===================================================

A client that suspects its token leaked revokes it itself at once, without an
admin; the next request with it is 401. Nothing here reveals another user.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.dependencies import DatabaseDep, PrincipalDep
from dig_coordination import users

router = APIRouter(prefix="/api/me", tags=["account"])


@router.get("")
def who_am_i(principal: PrincipalDep) -> dict[str, Any]:
    """The caller: user, organisation, role and the token used (prefix, expiry)."""
    expires = principal.token_expires_at
    return {
        "user": principal.user_name,
        "organisation": principal.org_name,
        "role": principal.role,
        "token": {
            "prefix": principal.token_prefix,
            "expires_at": expires.isoformat() if expires else None,
        },
    }


@router.delete("/token", status_code=204)
def revoke_my_token(principal: PrincipalDep, database: DatabaseDep) -> Response:
    """Revoke the token this request carries; it stops working at once."""
    with database.connection("admin") as conn:
        users.revoke_token(conn, principal)
    return Response(status_code=204)
