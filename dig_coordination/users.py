"""Organisations, users and bearer tokens.

``geoby users add --org ORG --role ROLE`` creates the organisation when it is
new, the user, and a token that is printed once and never stored: the
database keeps only its SHA-256. Tokens are 256-bit random strings
(``gby_`` and 43 URL-safe characters), so a fast hash is enough: there is
nothing to guess that a slow hash would protect (unlike a password), and
the lookup is one index probe per request.

A token authenticates one user of one organisation with one role
(contractor, utility, planner, admin). An organisation of kind utility is
named exactly as its assets' ``owner`` in the utilities layers: that name is
what ties a utility user to its networks, interest areas and answers.

Decisions:

* A token may expire (``--expires-days``) and can be revoked by its prefix
  (the first 12 characters, shown by ``geoby users list``); a disabled user's
  tokens stop working at once.
* ``last_used_at`` is written at most once a minute per token, so
  authentication stays a read on the hot path.
* Authentication failures say only "invalid or expired token", never which.
* A caller can revoke the token it is using (:func:`revoke_token`, ``DELETE
  /api/me/token``); revocations and disabling a user are written to the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg2.extensions import connection as Connection

from dig_coordination.model import ROLES
from layers.errors import InvalidInput, NotFound, Unauthorized

TOKEN_PREFIX = "gby_"
PREFIX_LENGTH = 12


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user of an organisation, with one role."""

    user_id: int
    user_name: str
    org_id: int
    org_name: str
    role: str
    token_id: int | None = None
    token_prefix: str | None = None
    token_expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def token_digest(token: str) -> bytes:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).digest()


def ensure_organisation(
    conn: Connection,
    name: str,
    *,
    email: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    answers_manually: bool | None = None,
) -> int:
    """The id of organisation ``name``, created when new; given fields are updated."""
    name = name.strip()
    if not name:
        raise InvalidInput("the organisation needs a name", field="org")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise InvalidInput(f"webhook URL {webhook_url!r} is not http(s)", field="webhook_url")
    if webhook_url and not webhook_secret:
        webhook_secret = secrets.token_urlsafe(32)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO geoby.organisations (name, email, webhook_url, webhook_secret,"
            " answers_manually) VALUES (%s, %s, %s, %s, coalesce(%s, false))"
            " ON CONFLICT (name) DO UPDATE SET"
            " email = coalesce(EXCLUDED.email, organisations.email),"
            " webhook_url = coalesce(EXCLUDED.webhook_url, organisations.webhook_url),"
            " webhook_secret = coalesce(EXCLUDED.webhook_secret, organisations.webhook_secret),"
            " answers_manually = coalesce(%s, organisations.answers_manually)"
            " RETURNING id",
            (name, email, webhook_url, webhook_secret, answers_manually, answers_manually),
        )
        return cur.fetchone()[0]


def add_user(
    conn: Connection,
    *,
    org: str,
    role: str,
    name: str | None = None,
    email: str | None = None,
    expires_days: int | None = None,
) -> tuple[Principal, str]:
    """Create (or reuse) the user and issue a new token; returns it in clear, once."""
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    if expires_days is not None and expires_days < 1:
        raise InvalidInput("a token must live at least one day", field="expires_days")
    org_id = ensure_organisation(conn, org)
    name = (name or f"{role}@{org}").strip()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO geoby.users (org_id, name, email, role) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (org_id, name) DO UPDATE SET email = coalesce(EXCLUDED.email,"
            " users.email) RETURNING id, role, disabled_at",
            (org_id, name, email, role),
        )
        user_id, stored_role, disabled_at = cur.fetchone()
        if stored_role != role:
            raise InvalidInput(
                f"user {name!r} of {org!r} already exists with role {stored_role}", field="role"
            )
        if disabled_at is not None:
            raise InvalidInput(f"user {name!r} of {org!r} is disabled", field="name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
        cur.execute(
            "INSERT INTO geoby.tokens (user_id, token_sha256, prefix, expires_at)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (user_id, token_digest(token), token[:PREFIX_LENGTH], expires),
        )
        token_id = cur.fetchone()[0]
    principal = Principal(user_id, name, org_id, org.strip(), role, token_id,
                          token[:PREFIX_LENGTH], expires)  # fmt: skip
    return principal, token


def authenticate(conn: Connection, token: str | None) -> Principal:
    """The principal a bearer token stands for; :class:`Unauthorized` otherwise."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer TOKEN)")
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t.id, u.id, u.name, o.id, o.name, u.role,"
            " t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute',"
            " t.prefix, t.expires_at"
            " FROM geoby.tokens t JOIN geoby.users u ON u.id = t.user_id"
            " JOIN geoby.organisations o ON o.id = u.org_id"
            " WHERE t.token_sha256 = %s AND t.revoked_at IS NULL AND u.disabled_at IS NULL"
            " AND (t.expires_at IS NULL OR t.expires_at > now())",
            (token_digest(token),),
        )
        row = cur.fetchone()
        if row is None:
            raise Unauthorized("invalid or expired token")
        token_id, user_id, user_name, org_id, org_name, role, touch, prefix, expires = row
        if touch:
            cur.execute("UPDATE geoby.tokens SET last_used_at = now() WHERE id = %s", (token_id,))
    return Principal(user_id, user_name, org_id, org_name, role, token_id, prefix, expires)


def revoke(conn: Connection, prefix: str) -> int:
    """Revoke the live tokens whose prefix starts with ``prefix`` (8+ characters), or one whole token."""
    if len(prefix) < 8:
        raise InvalidInput("give at least the first 8 characters of the token", field="prefix")
    with conn.cursor() as cur:
        if len(prefix) > PREFIX_LENGTH:  # the whole token
            cur.execute(
                "UPDATE geoby.tokens SET revoked_at = now()"
                " WHERE revoked_at IS NULL AND token_sha256 = %s",
                (token_digest(prefix),),
            )
        else:
            cur.execute(
                "UPDATE geoby.tokens SET revoked_at = now()"
                " WHERE revoked_at IS NULL AND starts_with(prefix, %s)",
                (prefix,),
            )
        if cur.rowcount == 0:
            raise NotFound(f"no live token starts with {prefix!r}")
        return cur.rowcount


def revoke_token(conn: Connection, principal: Principal) -> None:
    """Revoke the token ``principal`` authenticated with (its own), and audit it."""
    if principal.token_id is None:
        raise InvalidInput("this principal did not come from a token", field="token")
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE geoby.tokens SET revoked_at = now()"
            " WHERE id = %s AND user_id = %s AND revoked_at IS NULL RETURNING prefix",
            (principal.token_id, principal.user_id),
        )
        if cur.fetchone() is None:
            raise Unauthorized("invalid or expired token")
        cur.execute(
            "INSERT INTO geoby.audit_log (user_id, org_id, action, object_type, object_id)"
            " VALUES (%s, %s, 'token.revoked', 'token', %s)",
            (principal.user_id, principal.org_id, principal.token_prefix),
        )


def disable_user(conn: Connection, *, org: str, name: str) -> int:
    """Disable a user: every token of theirs stops working at once. Returns the user's id."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE geoby.users u SET disabled_at = coalesce(u.disabled_at, now())"
            " FROM geoby.organisations o WHERE o.id = u.org_id AND o.name = %s AND u.name = %s"
            " RETURNING u.id, u.org_id",
            (org.strip(), name.strip()),
        )
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no user {name!r} of {org!r}")
        cur.execute(
            "INSERT INTO geoby.audit_log (user_id, org_id, action, object_type, object_id)"
            " VALUES (NULL, %s, 'user.disabled', 'user', %s)",
            (row[1], str(row[0])),
        )
        return row[0]


def list_users(conn: Connection) -> list[dict]:
    """Users with their organisation, role and live tokens' prefixes."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT o.name, u.name, u.role, u.email, u.disabled_at,"
            " array_remove(array_agg(t.prefix ORDER BY t.created_at)"
            " FILTER (WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL"
            " OR t.expires_at > now())), NULL)"
            " FROM geoby.users u JOIN geoby.organisations o ON o.id = u.org_id"
            " LEFT JOIN geoby.tokens t ON t.user_id = u.id"
            " GROUP BY o.name, u.name, u.role, u.email, u.disabled_at ORDER BY o.name, u.name"
        )
        keys = ("organisation", "name", "role", "email", "disabled_at", "tokens")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
