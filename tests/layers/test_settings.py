import pytest
from pydantic import ValidationError

from layers.settings import Settings


def test_defaults_are_development_and_loopback(monkeypatch):
    for var in ("GEOBY_DATABASE_URL", "GEOBY_API_HOST", "GEOBY_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.environment == "development"
    assert s.api.host == "127.0.0.1"
    assert s.database.url is None
    assert s.database.storage_srid == 25832
    assert s.dig.normal_max_extent_m == 500
    assert s.dig.max_vertices == 50


def test_environment_variables_with_prefix(monkeypatch):
    monkeypatch.setenv("GEOBY_API_PORT", "8123")
    monkeypatch.setenv("GEOBY_DATABASE_NAME", "other")
    monkeypatch.setenv("GEOBY_DIG_MAX_VERTICES", "80")
    monkeypatch.setenv("GEOBY_DATA_DIR", "/srv/geoby")
    s = Settings()
    assert s.api.port == 8123
    assert s.database.name == "other"
    assert s.dig.max_vertices == 80
    assert str(s.data_dir) == "/srv/geoby"


def test_bad_value_is_named(monkeypatch):
    monkeypatch.setenv("GEOBY_API_PORT", "99999")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_production_refuses_missing_url(monkeypatch):
    monkeypatch.delenv("GEOBY_DATABASE_URL", raising=False)
    monkeypatch.setenv("GEOBY_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="GEOBY_DATABASE_URL must be set"):
        Settings()


@pytest.mark.parametrize("password", ["geoby-dev-read", "change-me", ""])
def test_production_refuses_development_and_placeholder_passwords(monkeypatch, password):
    monkeypatch.setenv("GEOBY_ENVIRONMENT", "production")
    monkeypatch.setenv("GEOBY_DATABASE_URL", "postgresql://postgres:s3cr3t-x@db/geoby")
    monkeypatch.setenv("GEOBY_DATABASE_READ_PASSWORD", password)
    monkeypatch.setenv("GEOBY_DATABASE_INGEST_PASSWORD", "a-real-secret-1")
    monkeypatch.setenv("GEOBY_DATABASE_ADMIN_PASSWORD", "a-real-secret-2")
    with pytest.raises(ValidationError, match="GEOBY_DATABASE_READ_PASSWORD"):
        Settings()


def test_production_accepts_real_secrets(monkeypatch):
    monkeypatch.setenv("GEOBY_ENVIRONMENT", "production")
    monkeypatch.setenv("GEOBY_DATABASE_URL", "postgresql://postgres:s3cr3t-x@db/geoby")
    for role in ("READ", "INGEST", "ADMIN"):
        monkeypatch.setenv(f"GEOBY_DATABASE_{role}_PASSWORD", f"real-{role}-9f8e7d")
    s = Settings()
    assert s.database.read_password.get_secret_value() == "real-READ-9f8e7d"
    assert "s3cr3t" not in repr(s)
