"""The geoby exception hierarchy and its problem-details form.

Every error geoby raises on purpose derives from :class:`GeobyError` and carries
an HTTP status, a short title, and two messages: ``detail`` for the user (safe
to show: it never holds SQL text, credentials or stack traces) and
``log_detail`` for the operator's log. Where a builtin fits, the error also
inherits it (``InvalidInput`` is a ``ValueError``), as rasterio's errors do, so
callers that know only the builtins still catch them.

:func:`problem_details` turns any exception into an RFC 9457 problem-details
document; it is the one place that mapping is made, used by the HTTP API and by
the CLI's error output alike.

Examples
--------
>>> err = InvalidInput("depth must be >= 0", field="depth_m", record="row 12")
>>> problem_details(err)["status"]
400
>>> isinstance(err, ValueError)
True
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_TYPE_BASE = "https://geoby.dev/problems/"


#: The longest message a user sees; longer ones (an echoed hostile parameter) are cut.
MAX_DETAIL = 2000


class GeobyError(Exception):
    """Base of every error geoby raises on purpose.

    Parameters
    ----------
    detail
        Message for the user; names the record, field or coordinate at fault.
    log_detail
        Extra text for the operator's log only (may hold internal details).
    field
        The input field at fault, where there is one.
    record
        The record at fault (row number, GML id, file name), where there is one.
    extra
        Further members for the problem-details document.
    """

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    code: ClassVar[str] = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        log_detail: str | None = None,
        field: str | None = None,
        record: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if len(detail) > MAX_DETAIL:  # a 50,000-character parameter is not echoed back whole
            detail = detail[: MAX_DETAIL - 1] + "…"
        super().__init__(detail)
        self.detail = detail
        self.log_detail = log_detail
        self.field = field
        self.record = record
        self.extra = dict(extra or {})

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.record, self.field and f"field {self.field}") if p)
        return f"{self.detail} ({where})" if where else self.detail


class InvalidInput(GeobyError, ValueError):
    """Input that cannot be accepted: a bad file, field, coordinate or parameter."""

    status = 400
    title = "Invalid input"
    code = "invalid-input"


class CRSMismatch(InvalidInput):
    """Coordinates that cannot be in the declared CRS, or an unsupported CRS."""

    title = "Coordinate reference system mismatch"
    code = "crs-mismatch"


class Unauthorized(GeobyError, PermissionError):
    """No valid credentials were presented."""

    status = 401
    title = "Authentication required"
    code = "unauthorized"


class Forbidden(GeobyError, PermissionError):
    """The caller is known but not entitled to this resource or action."""

    status = 403
    title = "Forbidden"
    code = "forbidden"


class NotFound(GeobyError, LookupError):
    """The resource does not exist (or is not visible to the caller)."""

    status = 404
    title = "Not found"
    code = "not-found"


class Conflict(GeobyError):
    """The request conflicts with the current state (a duplicate, a stale version)."""

    status = 409
    title = "Conflict"
    code = "conflict"


class DatabaseError(GeobyError):
    """A database failure; ``detail`` is generic, the driver's text goes to the log."""

    status = 500
    title = "Database error"
    code = "database-error"


class DatabaseUnavailable(DatabaseError, ConnectionError):
    """The database cannot be reached."""

    status = 503
    title = "Database unavailable"
    code = "database-unavailable"


class MigrationError(DatabaseError):
    """A migration failed or an applied migration file was changed."""

    title = "Migration error"
    code = "migration-error"


class ClusterError(GeobyError, RuntimeError):
    """The private PostgreSQL cluster could not be installed, started or stopped."""

    status = 503
    title = "Database cluster error"
    code = "cluster-error"


class MissingDependency(ClusterError):
    """A required system program is missing and could not be installed."""

    title = "Missing system dependency"
    code = "missing-dependency"


def problem_details(exc: BaseException, *, instance: str | None = None) -> dict[str, Any]:
    """Return the RFC 9457 problem-details document for an exception.

    Parameters
    ----------
    exc
        Any exception. Errors that are not :class:`GeobyError` become a generic
        500 whose detail reveals nothing of the original message.
    instance
        URI reference of the failing request, where known.

    Returns
    -------
    dict
        ``type``, ``title``, ``status``, ``detail`` and, where set,
        ``instance``, ``field``, ``record`` and any extra members.
    """
    if not isinstance(exc, GeobyError):
        exc = GeobyError("An internal error occurred; it has been logged.")
    doc: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + exc.code,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if instance:
        doc["instance"] = instance
    if exc.field:
        doc["field"] = exc.field
    if exc.record:
        doc["record"] = exc.record
    doc.update({k: v for k, v in exc.extra.items() if k not in doc})
    return doc
