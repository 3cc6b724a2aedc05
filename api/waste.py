"""HTTP routes of the waste analytics (``/api/waste/...``).

Sensor gateways post readings with a utility's or an admin's token; bins,
latest readings and alerts are open (the bins are an open layer).

=====================================  ===================================================
route                                  what
=====================================  ===================================================
``POST /api/waste/readings``           one reading or a list; stored once per (bin, time)
``GET /api/waste/bins``                bins with their latest reading
``GET /api/waste/bins/{bin_id}``       one bin, its latest readings and open alerts
``GET /api/waste/alerts``              open alerts (``?all=true``: resolved too)
``GET /api/waste/rejects``             refused messages, newest first (admin)
``GET /api/waste/coverage``            homes within walking distance of a station, by
                                       fraction (``gaps=true``: the homes outside)
``POST /api/waste/coverage/proposals`` sites for N new stations (planner, admin)
``GET /api/waste/forecast``            fill per bin now (or ``at``) with band, time to full
``GET /api/waste/plan``                the bins to empty on a day, with reasons
``GET /api/waste/kpis``                kg/inhabitant, recycling vs EU targets, effort, fill
``POST /api/waste/routes``             plan and route a day, store the routes (planner, admin)
``GET /api/waste/routes``              the stored routes and stops of a day
=====================================  ===================================================
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from api import problems
from api.dependencies import DatabaseDep, PrincipalDep
from layers.crs import reproject
from layers.errors import Forbidden, GeobyError, InvalidInput, NotFound
from waste import collection, coverage, service
from waste.readings import KnownBins, parse, reject, store

router = APIRouter(prefix="/api/waste", tags=["waste"])
SENDERS = ("utility", "admin")


def _bins(request: Request) -> KnownBins:
    known = getattr(request.app.state, "waste_bins", None)
    if known is None:
        known = request.app.state.waste_bins = KnownBins(request.app.state.database)
    return known


@router.post("/readings")
def post_readings(
    body: Annotated[Any, Body(description="A reading object, or a list of them.")],
    principal: PrincipalDep,
    database: DatabaseDep,
    request: Request,
) -> dict[str, Any]:
    """Store sensor readings: each is checked on its own; refused ones are listed by index
    with the field at fault (and kept in the rejects log), the rest are stored."""
    if principal.role not in SENDERS:
        raise Forbidden("sending sensor readings needs the utility or admin role")
    items = body if isinstance(body, list) else [body]
    limit = request.app.state.settings.waste.max_batch
    if len(items) > limit:
        raise InvalidInput(f"at most {limit:,} readings per request, got {len(items):,}",
                           field="body")  # fmt: skip
    known = _bins(request)
    good, refused = [], []
    for index, item in enumerate(items):
        try:
            reading = parse(item)
            known.check(reading.bin_id)
            good.append(reading)
        except GeobyError as exc:
            reject(database, "http", item, exc)
            refused.append({"index": index, "field": exc.field, "reason": exc.detail})
    result = store(database, good, "http", request.app.state.settings.waste)
    return {"received": len(items), "stored": result.stored, "duplicates": result.duplicates,
            "rejected": refused, "alerts_raised": result.raised}  # fmt: skip


_LATEST = """
SELECT b.bin_id, b.fraction, b.capacity_l, b.address, ST_X(ST_Centroid(ST_Transform(b.geom, 4326))),
       ST_Y(ST_Centroid(ST_Transform(b.geom, 4326))), r.time, r.fill_level, r.temperature_c,
       r.battery_v
FROM data.waste_bins AS b
LEFT JOIN LATERAL (SELECT time, fill_level, temperature_c, battery_v FROM data.waste_readings
                   WHERE bin_id = b.bin_id ORDER BY time DESC LIMIT 1) AS r ON true
"""
_COLUMNS = ("bin_id", "fraction", "capacity_l", "address", "lon", "lat", "last_reading",
            "fill_level", "temperature_c", "battery_v")  # fmt: skip


def _latest(cur) -> str:  # noqa: ANN001
    """Bins with their latest reading; without readings yet, the bins alone."""
    if _has(cur, "data.waste_readings"):
        return _LATEST
    return _LATEST.split("LEFT JOIN")[0].replace(
        "r.time, r.fill_level, r.temperature_c,\n       r.battery_v", "NULL, NULL, NULL, NULL"
    )


def _has(cur, table: str) -> bool:  # noqa: ANN001
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(cur.fetchone()[0])


@router.get("/bins")
def list_bins(
    database: DatabaseDep,
    fraction: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Bins with their latest reading (fill 0-1), CRS84 coordinates."""
    with database.connection("read") as conn, conn.cursor() as cur:
        if not _has(cur, "data.waste_bins"):
            return {"bins": []}
        query = _latest(cur) + " WHERE (%(fraction)s::text IS NULL OR b.fraction = %(fraction)s)" \
                 " ORDER BY b.bin_id LIMIT %(limit)s"  # fmt: skip
        cur.execute(query, {"fraction": fraction, "limit": limit})
        rows = cur.fetchall()
    return {"bins": [_bin(row) for row in rows]}


def _bin(row: tuple) -> dict[str, Any]:
    doc = dict(zip(_COLUMNS, row, strict=False))
    if doc.get("last_reading") is not None:
        doc["last_reading"] = doc["last_reading"].isoformat()
    return doc


@router.get("/bins/{bin_id}")
def get_bin(
    bin_id: str, database: DatabaseDep, readings: Annotated[int, Query(ge=0, le=1000)] = 24
) -> dict[str, Any]:
    """One bin: its latest readings (newest first) and its open alerts."""
    with database.connection("read") as conn, conn.cursor() as cur:
        if not _has(cur, "data.waste_bins"):
            raise NotFound(f"no bin {bin_id!r}", field="bin_id")
        cur.execute(_latest(cur) + " WHERE b.bin_id = %s", (bin_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"no bin {bin_id!r}", field="bin_id")
        history = []
        if _has(cur, "data.waste_readings"):
            cur.execute("SELECT time, fill_level, temperature_c, battery_v, fire_flag, tilt_flag,"
                        " _source FROM data.waste_readings WHERE bin_id = %s"
                        " ORDER BY time DESC LIMIT %s", (bin_id, readings))  # fmt: skip
            history = [{"time": t.isoformat(), "fill_level": f, "temperature_c": c,
                        "battery_v": v, "fire": fire, "tilt": tilt, "channel": src}
                       for t, f, c, v, fire, tilt, src in cur.fetchall()]  # fmt: skip
        cur.execute("SELECT kind, time, value, message, raised_at FROM geoby.waste_alerts"
                    " WHERE bin_id = %s AND resolved_at IS NULL ORDER BY raised_at", (bin_id,))  # fmt: skip
        alerts = [_alert((bin_id, *a, None)) for a in cur.fetchall()]
    return _bin(row) | {"readings": history, "alerts": alerts}


def _alert(row: tuple) -> dict[str, Any]:
    bin_id, kind, time, value, message, raised_at, resolved_at = row
    return {"bin_id": bin_id, "kind": kind, "time": time.isoformat(), "value": value,
            "message": message, "raised_at": raised_at.isoformat(),
            "resolved_at": resolved_at.isoformat() if resolved_at else None}  # fmt: skip


@router.get("/alerts")
def list_alerts(
    database: DatabaseDep,
    all: Annotated[bool, Query(description="Include resolved alerts.")] = False,  # noqa: A002
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """Alerts, newest first: overflow, fire, temperature, tilt, low battery, dead sensor."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT bin_id, kind, time, value, message, raised_at, resolved_at"
            " FROM geoby.waste_alerts WHERE (%(all)s OR resolved_at IS NULL)"
            " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " ORDER BY raised_at DESC, id DESC LIMIT %(limit)s",
            {"all": all, "kind": kind, "limit": limit},
        )
        rows = cur.fetchall()
    return {"alerts": [_alert(row) for row in rows]}


@router.get("/rejects")
def list_rejects(
    principal: PrincipalDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Refused sensor messages with their reasons, and the total (admins)."""
    if not principal.is_admin:
        raise Forbidden("the rejects log is for admins")
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM geoby.waste_rejects")
        total = cur.fetchone()[0]
        cur.execute("SELECT received_at, channel, topic, payload, reason, field"
                    " FROM geoby.waste_rejects ORDER BY id DESC LIMIT %s", (limit,))  # fmt: skip
        rows = cur.fetchall()
    keys = ("received_at", "channel", "topic", "payload", "reason", "field")
    return {"total": total, "rejects": [
        dict(zip(keys, (r[0].isoformat(), *r[1:]), strict=True)) for r in rows]}  # fmt: skip


# -- coverage --------------------------------------------------------------------------------


@router.get("/coverage")
def station_coverage(
    database: DatabaseDep,
    walk_m: Annotated[float, Query(gt=0, le=5000)] = coverage.DEFAULT_WALK_M,
    gaps: Annotated[bool, Query(description="Add the uncovered homes as GeoJSON.")] = False,
) -> dict[str, Any]:
    """Share of homes with a recycling station within ``walk_m`` along the streets, by
    fraction; with ``gaps=true`` the homes outside it (CRS84 GeoJSON per fraction)."""
    net, homes, stations = coverage.walkways(database), coverage.homes(database), \
        coverage.stations(database)  # fmt: skip
    summary, per_home = coverage.coverage(net, homes, stations, walk_m=walk_m)
    doc: dict[str, Any] = {"walk_m": walk_m, "fractions": summary.to_dict(orient="records")}
    if gaps:
        located = homes.set_index("building_id").to_crs(4326)
        doc["gaps"] = {}
        for fraction, group in per_home[~per_home["covered"]].groupby("fraction"):
            chosen = located.loc[group["building_id"]].assign(
                walk_m=group["walk_m"].replace(np.inf, None).to_numpy()
            )
            doc["gaps"][fraction] = json.loads(chosen.reset_index().to_json(na="null"))
    return doc


class ProposalIn(BaseModel):
    """New recycling stations to site."""

    budget: int = Field(ge=1, le=50, description="How many new stations.")
    walk_m: float = Field(default=coverage.DEFAULT_WALK_M, gt=0, le=5000)
    spacing_m: float = Field(default=100.0, ge=10, le=2000,
                             description="One candidate site per square of this size.")  # fmt: skip


@router.post("/coverage/proposals")
def propose_stations(
    body: ProposalIn, principal: PrincipalDep, database: DatabaseDep
) -> dict[str, Any]:
    """Where ``budget`` new stations (for every fraction) would cover the most homes
    (maximal covering location, existing stations kept); sites in CRS84 and EPSG:25832."""
    if principal.role not in ("planner", "admin"):
        raise Forbidden("siting stations needs the planner or admin role")
    net, homes, stations = coverage.walkways(database), coverage.homes(database), \
        coverage.stations(database)  # fmt: skip
    found = coverage.propose_stations(net, homes, stations, body.budget, walk_m=body.walk_m,
                                      spacing_m=body.spacing_m)  # fmt: skip
    for site in found["sites"]:
        lonlat = reproject(shapely.Point(site["x"], site["y"]), 25832, 0)
        site["lon"], site["lat"] = round(lonlat.x, 7), round(lonlat.y, 7)
    return found


# -- forecasts, plans, KPIs ------------------------------------------------------------------


@router.get("/forecast")
def fill_forecast(
    database: DatabaseDep,
    at: Annotated[
        str | None, Query(description="ISO time with zone; default the latest reading.")
    ] = None,  # fmt: skip
    threshold: Annotated[float, Query(gt=0, le=1)] = 0.8,
) -> dict[str, Any]:
    """Each bin's predicted fill at ``at`` with its 80 % band, and when it reaches
    ``threshold`` (early and late edge)."""
    when = None
    if at is not None:
        try:
            when = pd.Timestamp(at)
        except ValueError as exc:
            raise InvalidInput(f"at {at!r} is not an ISO time", field="at") from exc
    frame = service.forecast(database, when, threshold)
    return {"at": (when or service.model(database).latest).isoformat(), "threshold": threshold,
            "bins": service.records(frame)}  # fmt: skip


@router.get("/plan")
def collection_plan(
    database: DatabaseDep,
    day: Annotated[
        str | None,
        Query(description="YYYY-MM-DD; default the next workday after the latest reading."),
    ] = None,  # fmt: skip
    threshold: Annotated[float, Query(gt=0, le=1)] = 0.8,
) -> dict[str, Any]:
    """The bins to empty on ``day``: overflowing now, or forecast over ``threshold`` before
    the next possible visit."""
    return service.plan(database, day, threshold)


@router.get("/kpis")
def key_figures(
    database: DatabaseDep, population: Annotated[int | None, Query(gt=0)] = None
) -> dict[str, Any]:
    """kg per inhabitant, recycling rate against the EU targets, collections and km per
    week, fill at collection."""
    return service.kpis(database, population)


class RoutesIn(BaseModel):
    """A day to route."""

    day: str | None = Field(default=None, description="YYYY-MM-DD; default the next workday "
                            "after the latest reading.")  # fmt: skip
    threshold: float = Field(default=0.8, gt=0, le=1)
    seconds: float = Field(default=5.0, gt=0, le=120,
                           description="Search time per disposal site.")  # fmt: skip


@router.post("/routes")
def plan_routes(body: RoutesIn, principal: PrincipalDep, database: DatabaseDep) -> dict[str, Any]:
    """Plan the day, route the trucks over the roads (PyVRP, trips to the disposal sites
    when full), check every constraint, store the routes as layers and return them."""
    if principal.role not in ("planner", "admin"):
        raise Forbidden("planning routes needs the planner or admin role")
    plan = service.plan(database, body.day, body.threshold)
    found = collection.route_day(database, plan, seconds=body.seconds)
    return collection.stored(database, plan["day"]) | {"summary": found}


@router.get("/routes", responses=problems.declared(404, _404="No routes stored for the day."))
def stored_routes(database: DatabaseDep, day: str | None = None) -> dict[str, Any]:
    """The stored routes (lines) and stops (points, in order, with load) of ``day`` (default
    the latest routed), CRS84 GeoJSON."""
    return collection.stored(database, day)
