"""Configuration of geoby, read from ``GEOBY_*`` environment variables.

One pydantic-settings class per concern, as tipg does. Every value has a
development default so ``make demo`` works on a fresh clone, except secrets:
with ``GEOBY_ENVIRONMENT=production`` the settings refuse the development
passwords and an unset database URL.

Examples
--------
>>> from layers.settings import get_settings
>>> get_settings().database.storage_srid
25832
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Role passwords for development against an external server on loopback; the
# private cluster generates random ones instead.
DEV_PASSWORD_PREFIX = "geoby-dev-"
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "password", "secret", "postgres"})


class DatabaseSettings(BaseSettings):
    """Where the database is and how geoby connects to it.

    ``GEOBY_DATABASE_URL`` points geoby at an existing server (as
    docker-compose does); when unset, geoby runs its own cluster under
    ``cluster_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="GEOBY_DATABASE_", extra="ignore")

    url: SecretStr | None = Field(
        default=None, description="libpq URL of an existing server; bypasses the private cluster."
    )
    cluster_dir: Path = Field(default=Path("var/pg"), description="Private cluster location.")
    name: str = Field(default="geoby", description="Database name inside the private cluster.")
    port: int | None = Field(
        default=None, description="Port for the private cluster; a free one is chosen when unset."
    )
    read_password: SecretStr = SecretStr(DEV_PASSWORD_PREFIX + "read")
    ingest_password: SecretStr = SecretStr(DEV_PASSWORD_PREFIX + "ingest")
    admin_password: SecretStr = SecretStr(DEV_PASSWORD_PREFIX + "admin")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    statement_timeout_ms: int = Field(default=60_000, ge=0)
    storage_srid: int = Field(default=25832, description="EPSG code of the storage CRS.")


class ApiSettings(BaseSettings):
    """The HTTP server."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    title: str = "geoby"
    public_url: str | None = Field(
        default=None, description="Base URL clients see, when behind a proxy."
    )


class DigLimits(BaseSettings):
    """Limits on dig requests (KLIC's limits are the defaults)."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_DIG_", extra="ignore")

    normal_max_extent_m: float = 500.0
    planning_max_extent_m: float = 2500.0
    max_vertices: int = 50
    max_days_ahead: int = Field(default=20, description="Working days a start may lie ahead.")
    answer_buffer_m: float = 2.0


class Settings(BaseSettings):
    """All of geoby's settings."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default=Path("var/data"), description="Rasters (COGs) and uploads.")
    log_level: str = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    dig: DigLimits = Field(default_factory=DigLimits)

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        if self.database.url is None:
            raise ValueError("GEOBY_DATABASE_URL must be set when GEOBY_ENVIRONMENT=production")
        for role in ("read", "ingest", "admin"):
            secret: SecretStr = getattr(self.database, f"{role}_password")
            value = secret.get_secret_value()
            if value.startswith(DEV_PASSWORD_PREFIX) or value.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"GEOBY_DATABASE_{role.upper()}_PASSWORD must be set to a real secret when "
                    "GEOBY_ENVIRONMENT=production; the development or placeholder value is refused"
                )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
