"""Connections to PostGIS: role-scoped pools and the database boundary.

geoby connects with one of three roles, each with only the privileges it
needs (see ``layers/migrations/0001_roles_and_schemas.sql``):

``read``
    ``geoby_read``: SELECT on the open data and the catalog. The public API.
``ingest``
    ``geoby_ingest``: creates and writes data tables, writes the catalog.
``admin``
    ``geoby_admin``: platform tables (users, tokens, dig requests, audit).

:func:`resolve_dsn` finds the DSN for a role: from ``GEOBY_DATABASE_URL``
when set (its user is the owner that runs migrations; the roles log in with
``GEOBY_DATABASE_<ROLE>_PASSWORD``), else from the private cluster.

:class:`Database` keeps one pool per role. Its :meth:`Database.connection`
context manager commits on success, rolls back on error, and translates
driver errors into :mod:`layers.errors` so that no SQL text or credential
reaches a user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal
from urllib.parse import quote

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.pool
from psycopg2.extensions import make_dsn, parse_dsn

from layers.errors import Conflict, DatabaseError, DatabaseUnavailable, GeobyError, InvalidInput
from layers.pgcluster import Cluster
from layers.settings import Settings, get_settings

log = logging.getLogger(__name__)

Role = Literal["read", "ingest", "admin", "owner"]
ROLE_NAMES: dict[str, str] = {
    "read": "geoby_read",
    "ingest": "geoby_ingest",
    "admin": "geoby_admin",
}


def cluster_for(settings: Settings) -> Cluster:
    """The private cluster that ``settings`` describe."""
    return Cluster(settings.database.cluster_dir, port=settings.database.port)


def resolve_dsn(settings: Settings | None = None, role: Role = "read") -> str:
    """Return the libpq DSN with which ``role`` connects.

    Parameters
    ----------
    settings
        Defaults to :func:`layers.settings.get_settings`.
    role
        ``read``, ``ingest``, ``admin``, or ``owner`` (the superuser of the
        private cluster, or the user of ``GEOBY_DATABASE_URL``; migrations only).
    """
    settings = settings or get_settings()
    db = settings.database
    if db.url is not None:
        owner = parse_dsn(db.url.get_secret_value())
        if role == "owner":
            return make_dsn(**owner)
        password = getattr(db, f"{role}_password").get_secret_value()
        return make_dsn(**{**owner, "user": ROLE_NAMES[role], "password": password})
    cluster = cluster_for(settings)
    if role == "owner":
        return cluster.superuser_dsn(db.name)
    name = ROLE_NAMES[role]
    return cluster.dsn(name, cluster.credentials()[name], db.name)


def redact(dsn: str) -> str:
    """A DSN with its password replaced, safe for logs and error messages."""
    try:
        parts = parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "(unparseable DSN)"
    if "password" in parts:
        parts["password"] = "***"
    return make_dsn(**parts)


def as_url(dsn: str) -> str:
    """A libpq keyword DSN as a ``postgresql://`` URL (for psql, QGIS, ``ogr2ogr PG:``)."""
    parts = parse_dsn(dsn)
    user = quote(parts.get("user", ""), safe="")
    password = parts.get("password")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = parts.get("host", "127.0.0.1")
    port = f":{parts['port']}" if "port" in parts else ""
    return f"postgresql://{auth}{host}{port}/{quote(parts.get('dbname', ''), safe='')}"


# SQLSTATEs that mean the server went away or cannot serve now, not that the request was
# wrong: connection exceptions (class 08), operator intervention (57P01 admin shutdown, 57P02
# crash shutdown, 57P03 cannot connect now: starting up or shutting down) and too many
# connections. A retry after the server is back may succeed.
UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def unavailable(exc: psycopg2.Error) -> bool:
    """Whether ``exc`` says the server is away (restarting, crashed, unreachable), so the
    request may be retried later, rather than that the request itself failed."""
    if isinstance(exc, psycopg2.InterfaceError):  # not "cursor already closed": a bug
        return "connection already closed" in str(exc)
    if not isinstance(exc, psycopg2.OperationalError):
        return False
    code = exc.pgcode
    return code is None or code.startswith("08") or code in UNAVAILABLE_STATES


def translate(exc: psycopg2.Error) -> GeobyError:
    """Map a driver error to a geoby error whose user message is safe to show."""
    text = str(exc).strip()
    if unavailable(exc):
        return DatabaseUnavailable("The database is not reachable.", log_detail=text)
    if isinstance(exc, psycopg2.errors.UniqueViolation):
        return Conflict("A record with the same key already exists.", log_detail=text)
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        return DatabaseError("The query took too long and was cancelled.", log_detail=text)
    if isinstance(exc, psycopg2.DataError | psycopg2.IntegrityError):
        return InvalidInput("The data was rejected by a database constraint.", log_detail=text)
    return DatabaseError("A database error occurred; it has been logged.", log_detail=text)


def connect(dsn: str, *, application_name: str = "geoby") -> psycopg2.extensions.connection:
    """Open one connection, translating a failure to :class:`DatabaseUnavailable`."""
    try:
        return psycopg2.connect(dsn, application_name=application_name)
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(
            "The database is not reachable; is it running (`geoby db status`)?",
            log_detail=f"{redact(dsn)}: {exc}",
        ) from exc


class _KeepingPool(psycopg2.pool.ThreadedConnectionPool):
    """A pool that keeps up to ``maxconn`` idle connections.

    psycopg2's pools close every connection handed back beyond ``minconn``, so
    under concurrent load each request past the first few opened a new
    session (110 sessions for 2,400 requests in bench_ogc.py; keeping them
    took single-feature requests from 520 to 1,390 per second).
    """

    #: A connection idle longer than this is pinged before use (one round trip): a
    #: server restart while it sat in the pool would otherwise fail the request using it.
    PING_AFTER_S = 1.0

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - psycopg2's signature
        self._idle_since: dict[int, float] = {}  # id of an idle connection -> when it was put back
        super().__init__(*args, **kwargs)

    def _putconn(self, conn, key=None, close=False):  # noqa: ANN001 - psycopg2's signature
        # Called under the pool's lock (ThreadedConnectionPool.putconn).
        floor, self.minconn = self.minconn, self.maxconn
        try:
            super()._putconn(conn, key, close)
        finally:
            self.minconn = floor
        if conn.closed:
            self._idle_since.pop(id(conn), None)
        else:
            self._idle_since[id(conn)] = time.monotonic()

    def checkout(self) -> psycopg2.extensions.connection:
        """A live connection: one idle for over :attr:`PING_AFTER_S` is checked first, and
        when it turns out dead (the server restarted) it and every idle one are dropped
        and a new connection is opened."""
        conn = self.getconn()
        idle_since = self._idle_since.get(id(conn))
        if idle_since is None or time.monotonic() - idle_since < self.PING_AFTER_S:
            return conn
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.rollback()
            return conn
        except psycopg2.Error as exc:
            log.info("an idle connection was dead (%s); reconnecting", str(exc).strip())
            self.putconn(conn, close=True)
            self.discard_idle()
            return self.getconn()

    def discard_idle(self) -> int:
        """Close every idle connection; returns how many.

        Called when a connection turned out broken: the server restarted or
        crashed, so the idle ones, opened to the same server, are dead too.
        Without this each of them would fail one more request after the
        server is back.
        """
        with self._lock:
            idle, self._pool = self._pool, []
            for conn in idle:
                self._idle_since.pop(id(conn), None)
        for conn in idle:
            try:
                conn.close()
            except psycopg2.Error:
                pass
        return len(idle)


class Database:
    """Connection pools for geoby's roles, created lazily.

    Parameters
    ----------
    settings
        Where to connect; defaults to the process settings.

    Examples
    --------
    >>> db = Database()                                   # doctest: +SKIP
    >>> with db.connection("read") as conn, conn.cursor() as cur:  # doctest: +SKIP
    ...     cur.execute("SELECT postgis_lib_version()")
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._pools: dict[str, psycopg2.pool.ThreadedConnectionPool] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def dsn(self, role: Role) -> str:
        return resolve_dsn(self.settings, role)

    def _pool(self, role: Role) -> psycopg2.pool.ThreadedConnectionPool:
        with self._lock:
            pool = self._pools.get(role)
            if pool is None:
                db = self.settings.database
                dsn = self.dsn(role)
                # JIT off: short spatial queries whose row estimates are far off (a GiST
                # probe over 10 M cables estimated at 10,000 rows) paid ~0.4 s of
                # compilation each; none of the platform's queries gains from it.
                options = f"-c statement_timeout={db.statement_timeout_ms} -c jit=off"
                try:
                    pool = _KeepingPool(
                        db.pool_min, db.pool_max, dsn,
                        application_name=f"geoby-{role}", options=options,
                    )  # fmt: skip
                except psycopg2.OperationalError as exc:
                    raise DatabaseUnavailable(
                        "The database is not reachable; is it running (`geoby db status`)?",
                        log_detail=f"{redact(dsn)}: {exc}",
                    ) from exc
                self._pools[role] = pool
                self._slots[role] = threading.BoundedSemaphore(db.pool_max)
            return pool

    @contextmanager
    def connection(self, role: Role = "read") -> Iterator[psycopg2.extensions.connection]:
        """A pooled connection in a transaction: committed on success, else rolled back.

        Raises
        ------
        GeobyError
            Driver errors raised inside the block, translated by :func:`translate`.
        """
        pool = self._pool(role)
        # psycopg2's pool raises at once when all its connections are out; wait
        # for one instead, so a burst of requests queues rather than fails.
        slots = self._slots[role]
        if not slots.acquire(timeout=self.settings.database.pool_wait_s):
            raise DatabaseUnavailable(
                "The database is busy; try again shortly.",
                log_detail=f"no {role} connection free within "
                f"{self.settings.database.pool_wait_s:g} s (pool_max "
                f"{self.settings.database.pool_max})",
            )
        try:
            try:
                conn = pool.checkout() if isinstance(pool, _KeepingPool) else pool.getconn()
            except psycopg2.Error as exc:
                raise translate(exc) from exc
            try:
                yield conn
                conn.commit()
            except psycopg2.Error as exc:
                _rollback(conn)
                log.warning("database error as %s: %s", role, exc)
                raise translate(exc) from exc
            except BaseException:
                _rollback(conn)
                raise
            finally:
                broken = conn.closed != 0
                pool.putconn(conn, close=broken)
                if broken and isinstance(pool, _KeepingPool):
                    dropped = pool.discard_idle()
                    log.warning("a %s connection was broken (server restarted?); "
                                "discarded %d idle ones", role, dropped)  # fmt: skip
        finally:
            slots.release()

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            for pool in self._pools.values():
                pool.closeall()
            self._pools.clear()


def _rollback(conn: psycopg2.extensions.connection) -> None:
    """Roll back, unless the connection is already gone (then there is nothing to undo:
    the server dropped the transaction with the connection)."""
    if conn.closed:
        return
    try:
        conn.rollback()
    except psycopg2.Error as exc:  # the server went away between the error and now
        log.warning("rollback failed, connection dropped: %s", exc)
