import pytest

from layers.errors import (
    ClusterError,
    Conflict,
    CRSMismatch,
    DatabaseError,
    DatabaseUnavailable,
    Forbidden,
    GeobyError,
    InvalidInput,
    MissingDependency,
    NotFound,
    Unauthorized,
    problem_details,
)


@pytest.mark.parametrize(
    ("cls", "status", "builtin"),
    [
        (InvalidInput, 400, ValueError),
        (CRSMismatch, 400, ValueError),
        (Unauthorized, 401, PermissionError),
        (Forbidden, 403, PermissionError),
        (NotFound, 404, LookupError),
        (Conflict, 409, Exception),
        (DatabaseError, 500, Exception),
        (DatabaseUnavailable, 503, ConnectionError),
        (ClusterError, 503, RuntimeError),
        (MissingDependency, 503, RuntimeError),
    ],
)
def test_each_error_has_status_and_builtin(cls, status, builtin):
    err = cls("something is wrong")
    assert isinstance(err, GeobyError)
    assert isinstance(err, builtin)
    doc = problem_details(err)
    assert doc["status"] == status
    assert doc["title"] == cls.title
    assert doc["type"].endswith(cls.code)
    assert doc["detail"] == "something is wrong"


def test_problem_names_field_and_record_but_not_log_detail():
    err = InvalidInput(
        "depth must not be negative",
        field="depth_m",
        record="row 12",
        log_detail="SELECT secret FROM x WHERE password='hunter2'",
        extra={"errors": [{"field": "depth_m"}]},
    )
    doc = problem_details(err, instance="/api/x")
    assert doc["field"] == "depth_m"
    assert doc["record"] == "row 12"
    assert doc["instance"] == "/api/x"
    assert doc["errors"] == [{"field": "depth_m"}]
    assert "hunter2" not in str(doc)
    assert str(err) == "depth must not be negative (row 12, field depth_m)"


def test_foreign_exception_reveals_nothing():
    doc = problem_details(RuntimeError("connection to postgresql://geoby:pw@db failed"))
    assert doc["status"] == 500
    assert "pw@db" not in str(doc)
    assert "postgresql" not in doc["detail"]


def test_extra_cannot_override_core_members():
    doc = problem_details(NotFound("gone", extra={"status": 200, "hint": "x"}))
    assert doc["status"] == 404
    assert doc["hint"] == "x"
