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
    pool_wait_s: float = Field(
        default=30.0, gt=0, description="How long a request waits for a free connection."
    )
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
    """Dig requests: limits (KLIC's are the defaults), answers and deadlines (LER's rules)."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_DIG_", extra="ignore")

    normal_max_extent_m: float = Field(default=500.0, gt=0, description="Normal and emergency.")
    planning_max_extent_m: float = Field(default=2500.0, gt=0)
    normal_max_area_m2: float = Field(default=250_000.0, gt=0)
    planning_max_area_m2: float = Field(default=6_250_000.0, gt=0)
    max_vertices: int = Field(default=50, ge=4)
    max_line_width_m: float = Field(default=20.0, gt=0)
    max_days_ahead: int = Field(default=20, description="Working days a start may lie ahead.")
    max_period_days: int = Field(default=365, ge=1, description="Longest dig period.")
    max_depth_m: float = Field(default=100.0, gt=0)
    answer_buffer_m: float = Field(
        default=5.0, ge=0, description="Assets this far outside the dig area are in the answer."
    )
    answer_valid_working_days: int = Field(default=20, ge=1)
    coordination_distance_m: float = Field(default=50.0, ge=0)
    service_area: Path | None = Field(
        default=None,
        description="GeoJSON polygon of the service area; default: the networks' extent.",
    )
    service_area_margin_m: float = Field(default=1000.0, ge=0)
    timezone: str = "Europe/Copenhagen"
    answer_within_hours: float = Field(default=2.0, gt=0)
    workday_start: str = Field(default="07:00", pattern=r"^\d\d:\d\d$")
    workday_end: str = Field(default="16:00", pattern=r"^\d\d:\d\d$")
    next_day_answer_at: str = Field(default="09:00", pattern=r"^\d\d:\d\d$")
    extra_non_working_days: list[str] = Field(
        default=["05-01", "06-05", "12-24", "12-31"],
        description="MM-DD days off besides weekends and public holidays (LER, bek. 1473/2019 "
        "s. 22: 1 May, 5 June, 24 and 31 December).",
    )
    reminder_interval_hours: float = Field(default=2.0, gt=0)


class NotifySettings(BaseSettings):
    """Owner and contractor notifications: SMTP and webhooks, retried with backoff."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_NOTIFY_", extra="ignore")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "geoby <noreply@geoby.localhost>"
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    backoff_base_s: float = Field(default=10.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
    worker_in_app: bool = Field(
        default=True,
        description="Run the notification worker in the API process (else `geoby dig worker`).",
    )


class BrokerSettings(BaseSettings):
    """The MQTT broker bin sensors publish to, and the subscriber that stores their readings.

    Without ``host`` geoby uses its private broker (``geoby broker up``, under
    ``var/mqtt`` on a loopback port).
    """

    model_config = SettingsConfigDict(env_prefix="GEOBY_BROKER_", extra="ignore")

    host: str | None = None
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    topic: str = Field(default="geoby/waste/readings/#",
                       description="Readings arrive here; the bin id may be the last level.")  # fmt: skip
    directory: Path = Field(default=Path("var/mqtt"), description="The private broker's files.")
    subscribe_in_app: bool = Field(
        default=True, description="Run the subscriber in the API process (else `geoby waste "
        "subscribe`).")  # fmt: skip


class WasteSettings(BaseSettings):
    """Sensor alerts and planning defaults."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_WASTE_", extra="ignore")

    overflow_level: float = Field(default=0.9, gt=0, le=1.5, description="Fill alert (0-1).")
    fire_temperature_c: float = Field(default=60.0, description="Temperature alert (degC).")
    low_battery_v: float = Field(default=3.3, ge=0, description="Battery alert (V).")
    dead_after_h: float = Field(default=26.0, gt=0, description="No reading for this long.")
    max_batch: int = Field(default=10_000, ge=1, description="Readings per HTTP request.")


class Settings(BaseSettings):
    """All of geoby's settings."""

    model_config = SettingsConfigDict(env_prefix="GEOBY_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default=Path("var/data"), description="Rasters (COGs) and uploads.")
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as text (people at a terminal) or one JSON object per line "
        "(log shippers; production). See api/observability.py.",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    dig: DigLimits = Field(default_factory=DigLimits)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    waste: WasteSettings = Field(default_factory=WasteSettings)

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
