"""Tokens: expiry, revocation, disabled users, storage as SHA-256 only, and brute-force limits.

Every authenticated endpoint family (dig, audit, interest areas, rules, waste,
flood, account) must refuse an expired, revoked or disabled user's token at once
with 401 and the same words ("invalid or expired token"), so a caller cannot
tell which. No table may hold a token in clear. Failed authentications are
limited per client address (:mod:`api.ratelimit`): past the limit, 429 with
``Retry-After`` without the token being checked, other addresses unaffected,
and the address recovers when the window has passed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from psycopg2 import sql

from api import account, ratelimit
from api.app import create_app
from dig_coordination.users import add_user, disable_user, revoke, token_digest
from layers.database import Database
from tests.reliability.record import record, scale

DETAIL = "invalid or expired token"
# (method, path, body): one per authenticated endpoint family.
FAMILIES = [
    ("GET", "/api/dig-requests", None),
    ("GET", "/api/audit", None),
    ("GET", "/api/interest-areas", None),
    ("GET", "/api/precaution-rules", None),
    ("GET", "/api/waste/rejects", None),
    ("POST", "/api/waste/readings", {"readings": []}),
    ("POST", "/api/flood/scenarios", {"kind": "h4-no-such-kind"}),
    ("GET", "/api/me", None),
    ("DELETE", "/api/me/token", None),
]


@pytest.fixture(scope="module")
def app(settings, database: Database):
    application = create_app(settings)
    if not any(getattr(r, "path", "") == "/api/me" for r in application.routes):
        application.include_router(account.router)
    return application


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def issue(database: Database):
    """``issue(role)`` -> (principal, token) of a fresh user of a fresh organisation."""

    def make(role: str = "admin", **kwargs):
        with database.connection("admin") as conn:
            return add_user(conn, org=f"h4-tokens-{uuid.uuid4().hex[:8]}", role=role,
                            **kwargs)  # fmt: skip

    return make


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused_everywhere(client: TestClient, token: str) -> list[str]:
    """Each family's answer to ``token`` that is not the uniform 401.

    Each round starts with a fresh failure limiter: these refusals are meant to be
    counted, and the limit itself is tested below.
    """
    client.app.state.auth_limiter = None
    wrong = []
    for method, path, body in FAMILIES:
        response = client.request(method, path, json=body, headers=_bearer(token))
        if response.status_code != 401 or response.json().get("detail") != DETAIL:
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    return wrong


def test_a_fresh_token_works_on_every_family(client, issue):
    """The control: the same calls with a live admin token are not 401."""
    _, token = issue("admin")
    for method, path, body in FAMILIES[:-1]:  # not the self-revocation
        response = client.request(method, path, json=body, headers=_bearer(token))
        assert response.status_code != 401, (method, path, response.text)
    me = client.get("/api/me", headers=_bearer(token)).json()
    assert me["role"] == "admin" and me["token"]["prefix"] == token[:12]


def test_expired_revoked_and_disabled_tokens_are_refused_at_once(
    client, issue, owner_conn, database
):
    cases = failures = 0
    # expired: expires_at in the past
    principal, expired = issue("admin", expires_days=3)
    assert client.get("/api/me", headers=_bearer(expired)).status_code == 200
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE geoby.tokens SET expires_at = now() - interval '1 second'"
                    " WHERE token_sha256 = %s", (token_digest(expired),))  # fmt: skip
    wrong = _refused_everywhere(client, expired)
    cases, failures = cases + len(FAMILIES), failures + len(wrong)
    assert not wrong, wrong
    # revoked by an operator (geoby users revoke PREFIX)
    _, revoked = issue("utility")
    assert client.get("/api/me", headers=_bearer(revoked)).status_code == 200
    with database.connection("admin") as conn:
        assert revoke(conn, revoked[:12]) == 1
    wrong = _refused_everywhere(client, revoked)
    cases, failures = cases + len(FAMILIES), failures + len(wrong)
    assert not wrong, wrong
    # revoked by its holder through the API
    holder, own = issue("contractor")
    assert client.delete("/api/me/token", headers=_bearer(own)).status_code == 204
    wrong = _refused_everywhere(client, own)
    cases, failures = cases + len(FAMILIES), failures + len(wrong)
    assert not wrong, wrong
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM geoby.audit_log WHERE action = 'token.revoked'"
                    " AND user_id = %s AND object_id = %s", (holder.user_id, own[:12]))  # fmt: skip
        assert cur.fetchone()[0] == 1
    # a disabled user: every token of theirs, at once
    user, first = issue("planner", name="h4-disabled")
    with database.connection("admin") as conn:
        second = add_user(conn, org=user.org_name, role="planner", name="h4-disabled")[1]
        disable_user(conn, org=user.org_name, name="h4-disabled")
    for token in (first, second):
        wrong = _refused_everywhere(client, token)
        cases, failures = cases + len(FAMILIES), failures + len(wrong)
        assert not wrong, wrong
    record("access", "token_expiry_revocation", cases=cases, failures=failures,
           families=len(FAMILIES), kinds=["expired", "revoked", "self-revoked", "disabled"])  # fmt: skip


def test_tokens_are_stored_only_as_sha256(client, issue, owner_conn):
    issued = [issue(role)[1] for role in ("contractor", "utility", "planner", "admin")]
    for token in issued:  # used once, so any logging or last_used_at path has run
        assert client.get("/api/me", headers=_bearer(token)).status_code == 200
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema IN ('geoby', 'restricted', 'data')"
            " AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        )
        columns = cur.fetchall()
        leaks = []
        for schema, table, column in columns:
            query = sql.SQL("SELECT count(*) FROM {} WHERE strpos({}::text, %s) > 0").format(
                sql.Identifier(schema, table), sql.Identifier(column)
            )
            for token in issued:
                cur.execute(query, (token[12:],))  # the secret part, past the shown prefix
                if cur.fetchone()[0]:
                    leaks.append(f"{schema}.{table}.{column}")
        cur.execute("SELECT token_sha256 FROM geoby.tokens WHERE prefix = ANY(%s)",
                    ([t[:12] for t in issued],))  # fmt: skip
        stored = {bytes(row[0]) for row in cur.fetchall()}
    assert stored == {token_digest(t) for t in issued}
    record("access", "token_storage", cases=len(columns) * len(issued), failures=len(leaks),
           columns=len(columns))  # fmt: skip
    assert not leaks, leaks
    assert len(columns) > 20


# -- brute force ---------------------------------------------------------------------------


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_counts_failures_in_a_sliding_window():
    clock = Clock()
    limiter = ratelimit.FailureLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
        clock.now += 10
    assert limiter.retry_after("a") == pytest.approx(30)  # the first failure leaves at 1060
    assert limiter.retry_after("b") is None
    clock.now = 1060.0
    assert limiter.retry_after("a") is None  # one failure left the window
    limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(10)
    clock.now = 1200.0
    assert limiter.retry_after("a") is None and len(limiter) == 0


def test_limiter_is_bounded_and_thread_safe():
    clock = Clock()
    limiter = ratelimit.FailureLimiter(max_failures=5, window_s=60, max_keys=100, clock=clock)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100  # the least recently failed were evicted
    threads_n, per = 8, scale(250, 2000)
    shared = ratelimit.FailureLimiter(max_failures=10**6, window_s=60, clock=clock)
    threads = [threading.Thread(target=lambda: [shared.failed("x") for _ in range(per)])
               for _ in range(threads_n)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(shared._failures["x"]) == threads_n * per  # no lost update


def test_brute_force_is_limited_per_address(app, issue):
    clock = Clock()
    limit, window = ratelimit.MAX_FAILURES, ratelimit.WINDOW_S
    app.state.auth_limiter = ratelimit.FailureLimiter(limit, window, clock=clock)
    _, valid = issue("admin")
    attempts = scale(30, 200)
    statuses = []
    try:
        with TestClient(app, client=("203.0.113.7", 40000), raise_server_exceptions=False) as bad, \
                TestClient(app, client=("198.51.100.2", 40001),
                           raise_server_exceptions=False) as other:  # fmt: skip
            for i in range(attempts):
                guess = f"gby_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
                # a forged X-Forwarded-For must not give the guesser a fresh budget
                response = bad.get("/api/me", headers=_bearer(guess) | {
                    "X-Forwarded-For": f"192.0.2.{i % 250}"})  # fmt: skip
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                    problem = response.json()
                    assert problem["status"] == 429 and "too many failed" in problem["title"]
                    assert response.headers["content-type"].startswith("application/problem+json")
            # while blocked, even the right token is not checked: guessing gains nothing
            assert bad.get("/api/me", headers=_bearer(valid)).status_code == 429
            # another address with a valid token is unaffected
            assert other.get("/api/me", headers=_bearer(valid)).status_code == 200
            clock.now += window + 1
            recovered = bad.get("/api/me", headers=_bearer(valid)).status_code
    finally:
        app.state.auth_limiter = None
    expected = [401] * limit + [429] * (attempts - limit)
    failures = sum(a != b for a, b in zip(statuses, expected, strict=True))
    record("access", "brute_force", cases=attempts, failures=failures, limit=limit,
           window_s=window, refused_401=statuses.count(401), refused_429=statuses.count(429),
           recovered=recovered == 200)  # fmt: skip
    assert statuses == expected
    assert recovered == 200


def test_a_missing_header_is_no_guess(app):
    """Anonymous calls to protected routes (browsers, probes) never lock an address out."""
    app.state.auth_limiter = None
    with TestClient(app, client=("203.0.113.9", 40002), raise_server_exceptions=False) as c:
        codes = {c.get("/api/dig-requests").status_code for _ in range(ratelimit.MAX_FAILURES * 2)}
    assert codes == {401}
