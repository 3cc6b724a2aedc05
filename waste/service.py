"""Waste analytics on the platform's data: forecasts, the day's plan and the KPIs.

The fill model (:mod:`waste.forecast`) is fitted on the last
``HISTORY_DAYS`` of readings and collections in PostGIS and kept in memory
until new data arrives (the count and latest time of readings and collections
is its key), so the API answers from a fitted model; a refit takes seconds.

The "now" of a plan is the time of the latest reading unless given: the sample
town's sensors stopped in 2023, and planning for today from three-year-old
readings would be meaningless.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from layers.database import Database
from layers.errors import InvalidInput, NotFound
from waste import kpi
from waste.forecast import FillModel, fit
from waste.planning import load_history, plan_day

log = logging.getLogger(__name__)

HISTORY_DAYS = 42
VISIT_HOUR = 6
TIMEZONE = "Europe/Copenhagen"
PERSONS_PER_HOME = 2.1  # Statistics Denmark: about 2.1 persons per household


@dataclass(frozen=True)
class Fitted:
    """A model and the data it was fitted on."""

    model: FillModel
    key: tuple
    latest: pd.Timestamp


_CACHE: dict[str, Fitted] = {}
_LOCK = threading.Lock()


def _has(cur, table: str) -> bool:  # noqa: ANN001
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(cur.fetchone()[0])


def _data_key(database: Database) -> tuple:
    with database.connection("read") as conn, conn.cursor() as cur:
        if not _has(cur, "data.waste_readings"):
            raise NotFound("no bin readings: ingest waste readings or send some", field="readings")
        cur.execute("SELECT count(*), max(time) FROM data.waste_readings")
        readings = cur.fetchone()
        collections = (0, None)
        if _has(cur, "data.waste_collections"):
            cur.execute("SELECT count(*), max(time) FROM data.waste_collections")
            collections = cur.fetchone()
    if not readings[0]:
        raise NotFound("no bin readings yet", field="readings")
    return (*readings, *collections)


def model(database: Database) -> Fitted:
    """The fill model of the latest data (fitted now, or the one kept)."""
    key = _data_key(database)
    cache_key = database.settings.database.name
    with _LOCK:
        kept = _CACHE.get(cache_key)
        if kept is not None and kept.key == key:
            return kept
        latest = pd.Timestamp(max(t for t in (key[1], key[3]) if t is not None))
        since = latest - pd.Timedelta(days=HISTORY_DAYS)
        history = load_history(database, since=since)
        fitted = Fitted(fit(history, timezone=TIMEZONE), key, latest)
        _CACHE[cache_key] = fitted
        log.info("waste fill model fitted on %d events since %s", len(history), since)
        return fitted


def _bins(database: Database) -> pd.DataFrame:
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT bin_id, fraction, capacity_l, address, ST_X(p), ST_Y(p) FROM ("
            " SELECT *, ST_Transform(ST_PointOnSurface(geom), 4326) AS p FROM data.waste_bins"
            ") AS b ORDER BY bin_id"
        )
        rows = cur.fetchall()
    return pd.DataFrame(rows, columns=["bin_id", "fraction", "capacity_l", "address", "lon",
                                       "lat"])  # fmt: skip


def forecast(database: Database, at: pd.Timestamp | None = None,
             threshold: float = 0.8) -> pd.DataFrame:  # fmt: skip
    """Each bin's fill now (``at``, default the latest reading) with its 80 % band, and when
    it reaches ``threshold`` (with the band's early and late edge)."""
    fitted = model(database)
    at = _when(at, fitted)
    known = fitted.model.state.index
    fills = fitted.model.predict(known, at).set_index("bin_id")
    eta = fitted.model.time_to(threshold, at).set_index("bin_id")
    return fills.join(eta).reset_index()


def _when(at: pd.Timestamp | None, fitted: Fitted) -> pd.Timestamp:
    if at is None:
        return fitted.latest
    at = pd.Timestamp(at)
    if at.tzinfo is None:
        raise InvalidInput("the time needs a zone (e.g. 2023-11-30T06:00:00+01:00)", field="at")
    return at


def next_workday(day: pd.Timestamp) -> pd.Timestamp:
    """The next Monday-Friday after ``day``, at the visit hour."""
    nxt = day + pd.Timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += pd.Timedelta(days=1)
    return nxt


def plan(database: Database, day: str | None = None, threshold: float = 0.8) -> dict[str, Any]:
    """The bins to empty on ``day`` (YYYY-MM-DD, local; default the workday after the latest
    reading), each with its reason and fills, and counts by fraction."""
    fitted = model(database)
    if day is None:
        visit = next_workday(fitted.latest.tz_convert(TIMEZONE).normalize())
    else:
        try:
            visit = pd.Timestamp(day).tz_localize(TIMEZONE)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"day {day!r} is not a date YYYY-MM-DD", field="day") from exc
    visit += pd.Timedelta(hours=VISIT_HOUR)
    if visit < fitted.latest - pd.Timedelta(days=HISTORY_DAYS):
        raise InvalidInput("day lies before the history the model was fitted on", field="day")
    bins = _bins(database)
    chosen = plan_day(fitted.model, bins, visit, next_workday(visit), threshold)
    by_fraction = chosen.groupby(["fraction", "reason"]).size().unstack(fill_value=0)
    return {
        "day": visit.date().isoformat(),
        "visit": visit.isoformat(),
        "next_visit": next_workday(visit).isoformat(),
        "threshold": threshold,
        "bins_known": int(bins["bin_id"].isin(fitted.model.state.index).sum()),
        "bins": records(chosen.rename(columns={"fill_next": "fill_at_next_visit"})),
        "by_fraction": {
            f: {k: int(v) for k, v in row.items()} for f, row in by_fraction.iterrows()
        },  # fmt: skip
    }


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.replace({np.nan: None}).to_dict(orient="records")
    for row in out:
        for k, v in row.items():
            if isinstance(v, pd.Timestamp):
                row[k] = v.isoformat()
            elif isinstance(v, np.generic):
                row[k] = v.item()
    return out


def kpis(database: Database, population: int | None = None) -> dict[str, Any]:
    """kg per inhabitant, recycling rate against the EU targets, collections and km per week,
    fill at collection; ``population`` defaults to homes x 2.1 persons."""
    with database.connection("read") as conn, conn.cursor() as cur:
        if not _has(cur, "data.waste_collections"):
            raise NotFound("no collections: ingest waste collections first", field="collections")
        cur.execute(
            "SELECT c.time, b.fraction, c.weight_kg, c.fill_before "
            "FROM data.waste_collections AS c JOIN data.waste_bins AS b USING (bin_id)"
        )
        collections = pd.DataFrame(cur.fetchall(), columns=["time", "fraction", "weight_kg",
                                                            "fill_before"])  # fmt: skip
        routes = pd.DataFrame(columns=["date", "km"])
        if _has(cur, "data.waste_routes"):
            cur.execute("SELECT day, sum(distance_km) FROM data.waste_routes GROUP BY day")
            routes = pd.DataFrame(cur.fetchall(), columns=["date", "km"])
        source = "given"
        if population is None:
            homes = 0
            if _has(cur, "data.energy_buildings"):
                cur.execute("SELECT count(*) FROM data.energy_buildings "
                            "WHERE use LIKE 'residential%%'")  # fmt: skip
                homes = cur.fetchone()[0]
            population = int(round(homes * PERSONS_PER_HOME))
            source = f"estimated: {homes:,} homes x {PERSONS_PER_HOME} persons"
    if collections.empty:
        raise NotFound("no collections recorded", field="collections")
    collections["time"] = pd.to_datetime(collections["time"], utc=True)
    weighed = collections.dropna(subset=["weight_kg"])
    rate = kpi.recycling_rate(weighed)
    per_person = kpi.kg_per_inhabitant(weighed, population) if population else None
    doc = {
        "period": {"from": collections["time"].min().isoformat(),
                   "to": collections["time"].max().isoformat()},
        "population": population, "population_source": source,
        "recycling_rate": rate,
        "eu_targets": records(kpi.against_targets(rate).reset_index()),
        "by_fraction": records(kpi.recycling_by_fraction(weighed).reset_index()),
        "collections_per_week": {k: float(v) for k, v in
                                 kpi.collections_per_week(collections).items()},
        "fill_at_collection": records(kpi.fill_at_collection(collections).reset_index()),
        "km_per_week": kpi.km_per_week(routes) if len(routes) else None,
    }  # fmt: skip
    if per_person is not None:
        doc["kg_per_inhabitant"] = records(per_person.reset_index())
    return doc
