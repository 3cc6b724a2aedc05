"""Live bin-sensor readings: checked, stored once, and turned into alerts.

Readings come over MQTT (:mod:`waste.mqtt`) or HTTP (``POST
/api/waste/readings``) as JSON objects::

    {"bin_id": "EGV-B0001", "time": "2026-11-29T10:00:00Z", "fill_level": 0.45,
     "temperature_c": 12.1, "battery_v": 3.6, "fire": false, "tilt": false}

``fill_level`` is a fraction 0-1 (up to 1.2 for an overfull bin); ``fill_pct``
gives percent instead. FIWARE ``WasteContainer`` names are understood too
(``id``/``refWasteContainer``, ``dateObserved``, ``fillingLevel``,
``temperature``). Over MQTT the bin id may be the topic's last level. The time
must carry a zone and may not lie more than five minutes ahead.

A reading is stored in ``data.waste_readings`` once: a second copy with the
same bin and time is counted as a duplicate and changes nothing (so a sensor or
broker that resends is harmless). A message that is not a valid reading of a
known bin is refused, with the field at fault, and kept in
``geoby.waste_rejects`` with its reason: never fatal, never lost, counted.

Alerts (``geoby.waste_alerts``, one open alert per bin and kind): ``overflow``
(fill at or above ``GEOBY_WASTE_OVERFLOW_LEVEL``), ``fire`` (the sensor's
flag), ``temperature`` (at or above ``GEOBY_WASTE_FIRE_TEMPERATURE_C``),
``tilt``, ``low_battery``; the bin's latest reading raises or resolves them.
``dead_sensor`` is raised by :func:`check_dead_sensors` for bins silent
longer than ``GEOBY_WASTE_DEAD_AFTER_H`` and resolved by the next reading.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as Connection
from psycopg2.extras import execute_values

from ingest.loader import ensure_layer
from ingest.pipelines import IngestOptions
from ingest.waste_layers import KINDS
from layers.database import Database
from layers.errors import InvalidInput, NotFound
from layers.settings import WasteSettings

log = logging.getLogger(__name__)

MAX_FILL = 1.2
FUTURE_SLACK = timedelta(minutes=5)
_ALIASES = {
    "bin_id": ("bin_id", "binId", "bin", "id", "refWasteContainer", "container_id"),
    "time": ("time", "timestamp", "dateObserved", "observed_at", "ts"),
    "fill_level": ("fill_level", "fillingLevel", "fill"),
    "fill_pct": ("fill_pct", "fill_percent", "fillPercent"),
    "temperature_c": ("temperature_c", "temperature"),
    "battery_v": ("battery_v", "battery"),
    "fire": ("fire", "fire_flag", "fireDetected"),
    "tilt": ("tilt", "tilt_flag", "tilted"),
}


@dataclass(frozen=True)
class Reading:
    """One checked reading."""

    bin_id: str
    time: datetime
    fill_level: float
    temperature_c: float | None = None
    battery_v: float | None = None
    fire: bool = False
    tilt: bool = False
    reported: float | None = None  # the fill as sent, when it was a percentage


@dataclass
class StoreResult:
    """What a batch did: stored, duplicates, alerts raised and resolved."""

    stored: int = 0
    duplicates: int = 0
    raised: int = 0
    resolved: int = 0


def parse(message: Any, *, topic_bin: str | None = None,
          now: datetime | None = None) -> Reading:  # fmt: skip
    """Check one message (bytes, text or a decoded object) and return the reading.

    Raises
    ------
    InvalidInput
        Naming the field at fault.
    """
    doc = _decode(message)
    values = {name: _pick(doc, name) for name in _ALIASES}
    bin_id = values["bin_id"]
    if isinstance(bin_id, dict):  # NGSI-LD relationship {"object": "urn:..."}
        bin_id = bin_id.get("object")
    bin_id = str(bin_id).strip() if bin_id not in (None, "") else topic_bin
    if not bin_id:
        raise InvalidInput("no bin id (bin_id, or the topic's last level)", field="bin_id")
    if topic_bin and bin_id != topic_bin:
        raise InvalidInput(f"bin_id {bin_id!r} differs from the topic's {topic_bin!r}",
                           field="bin_id")  # fmt: skip
    if len(bin_id) > 100:
        raise InvalidInput("bin_id is longer than 100 characters", field="bin_id")
    time = _time(values["time"], now or datetime.now(UTC))
    fill, reported = _fill(values["fill_level"], values["fill_pct"])
    return Reading(
        bin_id=bin_id, time=time, fill_level=fill, reported=reported,
        temperature_c=_number(values["temperature_c"], "temperature_c", -60.0, 1500.0),
        battery_v=_number(values["battery_v"], "battery_v", 0.0, 100.0),
        fire=_flag(values["fire"], "fire"), tilt=_flag(values["tilt"], "tilt"),
    )  # fmt: skip


def _decode(message: Any) -> dict[str, Any]:
    if isinstance(message, bytes | bytearray):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput("the message is not UTF-8 text", field="payload") from exc
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the message is not JSON: {exc.msg} at character {exc.pos}",
                               field="payload") from exc  # fmt: skip
    if not isinstance(message, dict):
        raise InvalidInput("a reading is a JSON object", field="payload")
    return message


def _pick(doc: dict[str, Any], name: str) -> Any:
    for alias in _ALIASES[name]:
        if alias in doc:
            value = doc[alias]
            if isinstance(value, dict) and "value" in value:  # NGSI-LD property
                return value["value"]
            return value
    return None


def _time(value: Any, now: datetime) -> datetime:
    if value is None:
        raise InvalidInput("time is required (ISO 8601 with a zone)", field="time")
    try:
        time = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"time {value!r} is not ISO 8601", field="time") from exc
    if time.tzinfo is None:
        raise InvalidInput(f"time {value!r} has no time zone", field="time")
    if time > now + FUTURE_SLACK:
        raise InvalidInput(f"time {value} lies in the future", field="time")
    return time.astimezone(UTC)


def _fill(level: Any, pct: Any) -> tuple[float, float | None]:
    if level is not None and pct is not None:
        raise InvalidInput("give fill_level (0-1) or fill_pct, not both", field="fill_level")
    if pct is not None:
        value = _number(pct, "fill_pct", 0.0, MAX_FILL * 100)
        return float(value) / 100.0, float(value)  # type: ignore[arg-type]
    if level is None:
        raise InvalidInput("fill_level (0-1) or fill_pct is required", field="fill_level")
    value = _number(level, "fill_level", 0.0, None)
    if value > MAX_FILL:  # type: ignore[operator]
        raise InvalidInput(f"fill_level {value:g} is not a fraction 0-{MAX_FILL:g}; send "
                           "fill_pct for a percentage", field="fill_level")  # fmt: skip
    return float(value), None  # type: ignore[arg-type]


def _number(value: Any, field: str, low: float, high: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number", field=field)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} {value!r} is not a number", field=field) from exc
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        bound = f"{low:g}-{high:g}" if high is not None else f">= {low:g}"
        raise InvalidInput(f"{field} {value!r} is outside {bound}", field=field)
    return number


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise InvalidInput(f"{field} must be true or false", field=field)


# -- known bins --------------------------------------------------------------------------


class KnownBins:
    """The bin ids of ``data.waste_bins``, reloaded when an unknown id turns up (at most
    once a second), so bins ingested later are accepted without a restart."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._ids: frozenset[str] = frozenset()
        self._loaded = 0.0
        self._lock = threading.Lock()

    def check(self, bin_id: str) -> None:
        """Raise :class:`NotFound` for a bin geoby does not know."""
        if bin_id in self._ids:
            return
        with self._lock:
            if time.monotonic() - self._loaded >= 1.0:
                self._ids = frozenset(self._load())
                self._loaded = time.monotonic()
        if bin_id not in self._ids:
            raise NotFound(f"unknown bin {bin_id!r}", field="bin_id")

    def _load(self) -> list[str]:
        with self._database.connection("read") as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('data.waste_bins') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute("SELECT bin_id FROM data.waste_bins WHERE bin_id IS NOT NULL")
            return [r[0] for r in cur.fetchall()]


# -- storing -----------------------------------------------------------------------------

_INSERT = """
INSERT INTO data.waste_readings (bin_id, time, fill_level, fill_level_reported, temperature_c,
                                 battery_v, fire_flag, tilt_flag, quality, _source, _record)
VALUES %s
ON CONFLICT (bin_id, time) DO NOTHING
RETURNING bin_id, time
"""


def store(database: Database, readings: Iterable[Reading], channel: str,
          settings: WasteSettings) -> StoreResult:  # fmt: skip
    """Store readings (duplicates ignored) and update the alerts, in one transaction.

    The readings layer is created (empty, with its catalog entry) when no readings
    were ever ingested.
    """
    batch = list(readings)
    result = StoreResult()
    if not batch:
        return result
    rows = [(r.bin_id, r.time, r.fill_level, r.reported if r.reported is not None
             else r.fill_level, r.temperature_c, r.battery_v, r.fire, r.tilt, "live",
             channel, f"{r.bin_id}@{r.time.isoformat()}") for r in batch]  # fmt: skip
    with database.connection("ingest") as conn, conn.cursor() as cur:
        ensure_layer(conn, KINDS["readings"].spec(IngestOptions()))
        new = execute_values(cur, _INSERT, rows, page_size=1000, fetch=True)
        result.stored = len(new)
        result.duplicates = len(batch) - result.stored
        fresh = {(b, t) for b, t in new}
        latest = _latest([r for r in batch if (r.bin_id, r.time) in fresh])
        result.raised, result.resolved = _alerts(conn, latest, settings)
    return result


def _latest(batch: list[Reading]) -> list[Reading]:
    out: dict[str, Reading] = {}
    for reading in batch:
        kept = out.get(reading.bin_id)
        if kept is None or reading.time > kept.time:
            out[reading.bin_id] = reading
    return list(out.values())


def _states(r: Reading, s: WasteSettings) -> dict[str, tuple[bool, float | None, str]]:
    temp = r.temperature_c
    return {
        "overflow": (r.fill_level >= s.overflow_level, r.fill_level,
                     f"fill {r.fill_level:.0%} at or above {s.overflow_level:.0%}"),
        "fire": (r.fire, temp, "the sensor reports fire"),
        "temperature": (temp is not None and temp >= s.fire_temperature_c, temp,
                        f"temperature {temp} degC at or above {s.fire_temperature_c:g}"),
        "tilt": (r.tilt, None, "the bin is tilted or knocked over"),
        "low_battery": (r.battery_v is not None and r.battery_v < s.low_battery_v, r.battery_v,
                        f"battery {r.battery_v} V below {s.low_battery_v:g}"),
    }  # fmt: skip


def _alerts(conn: Connection, latest: list[Reading], settings: WasteSettings) -> tuple[int, int]:
    raise_rows, resolve_rows = [], []
    for reading in latest:
        for kind, (on, value, message) in _states(reading, settings).items():
            if on:
                raise_rows.append((reading.bin_id, kind, reading.time, value, message))
            else:
                resolve_rows.append((reading.bin_id, kind, reading.time))
        resolve_rows.append((reading.bin_id, "dead_sensor", reading.time))
    raised = resolved = 0
    with conn.cursor() as cur:
        if raise_rows:
            new = execute_values(cur, """
                INSERT INTO geoby.waste_alerts (bin_id, kind, time, value, message) VALUES %s
                ON CONFLICT (bin_id, kind) WHERE resolved_at IS NULL DO NOTHING RETURNING id
            """, raise_rows, fetch=True)  # fmt: skip
            raised = len(new)
        if resolve_rows:
            done = execute_values(cur, """
                UPDATE geoby.waste_alerts AS a SET resolved_at = now()
                FROM (VALUES %s) AS r (bin_id, kind, time)
                WHERE a.resolved_at IS NULL AND a.bin_id = r.bin_id AND a.kind = r.kind
                  AND a.time <= r.time::timestamptz
                RETURNING a.id
            """, resolve_rows, fetch=True)  # fmt: skip
            resolved = len(done)
    return raised, resolved


def reject(database: Database, channel: str, payload: Any, error: Exception,
           topic: str | None = None) -> None:  # fmt: skip
    """Keep a refused message with its reason (never raises: a log line at worst)."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes | bytearray) else (
        payload if isinstance(payload, str) else json.dumps(payload, default=str))  # fmt: skip
    reason = getattr(error, "detail", None) or str(error)
    try:
        with database.connection("ingest") as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO geoby.waste_rejects (channel, topic, payload, reason, field) "
                "VALUES (%s, %s, %s, %s, %s)",
                (channel, topic, text[:2000], reason[:500], getattr(error, "field", None)),
            )
    except Exception:  # noqa: BLE001 - a reject that cannot be stored is logged instead
        log.exception("could not record a rejected %s message: %s", channel, reason)


def check_dead_sensors(database: Database, settings: WasteSettings,
                       now: datetime | None = None) -> int:  # fmt: skip
    """Raise ``dead_sensor`` for bins whose last reading is older than the setting.

    Returns the number of alerts raised.
    """
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(hours=settings.dead_after_h)
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('data.waste_readings') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("""
            INSERT INTO geoby.waste_alerts (bin_id, kind, time, value, message)
            SELECT bin_id, 'dead_sensor', last, extract(epoch FROM %(now)s - last) / 3600,
                   'no reading since ' || to_char(last AT TIME ZONE 'UTC',
                                                  'YYYY-MM-DD HH24:MI') || ' UTC'
            FROM (SELECT bin_id, max(time) AS last FROM data.waste_readings
                  GROUP BY bin_id) AS l
            WHERE last < %(cutoff)s
            ON CONFLICT (bin_id, kind) WHERE resolved_at IS NULL DO NOTHING
        """, {"now": now, "cutoff": cutoff})  # fmt: skip
        return cur.rowcount
