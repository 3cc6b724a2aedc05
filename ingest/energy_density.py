"""Derived energy layers, recomputed in PostGIS after buildings or consumption load.

:func:`refresh` runs two SQL files in one transaction:

1. ``sql/energy_annual.sql``: annual electricity and heat (kWh) per building
   in ``energy_buildings``, summed from ``energy_consumption_hourly`` over
   the 12 months up to its latest hour;
2. ``sql/energy_heat_density.sql``: ``energy_heat_density``, the heat demand
   per 100 m grid cell (EPSG:25832) for heat planning: annual heat demand
   (MWh), density (MWh/ha), building count, buildings without data, floor
   area, dominant heat installation and the share of heat demand not on
   district heating. The table is emptied and refilled each time, so it
   always matches the loaded buildings and consumption.

Both layers are (re)registered in the catalog, theme ``energy``, with the
period and cell size in their properties.
"""

from __future__ import annotations

import logging
from datetime import datetime
from importlib import resources

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from layers import catalog
from layers.catalog import Layer
from layers.database import Database

log = logging.getLogger(__name__)

CELL_M = 100
DISTRICT_HEATING = "district_heating"
BUILDINGS = ("data", "energy_buildings")
CONSUMPTION = ("data", "energy_consumption_hourly")
DENSITY = ("data", "energy_heat_density")


def _query(name: str) -> str:
    return (resources.files("ingest") / "sql" / name).read_text()


def _exists(conn: Connection, table: tuple[str, str]) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{table[0]}.{table[1]}",))
        return cur.fetchone()[0] is not None


def refresh(database: Database, *, cell_m: int = CELL_M) -> int | None:
    """Recompute annual consumption per building and the heat density grid.

    Parameters
    ----------
    database
        Where (as the ``ingest`` role).
    cell_m
        Grid cell size in metres.

    Returns
    -------
    int or None
        Number of grid cells written, ``None`` when no buildings are loaded.
    """
    with database.connection("ingest") as conn:
        if not _exists(conn, BUILDINGS):
            return None
        period = _annual(conn) if _exists(conn, CONSUMPTION) else None
        cells = _density(conn, cell_m)
        _register(conn, cell_m, period)
    log.info("energy_heat_density: %d cells of %d m", cells, cell_m)
    return cells


def _annual(conn: Connection) -> tuple[datetime, datetime] | None:
    query = sql.SQL(_query("energy_annual.sql")).format(
        buildings=sql.Identifier(*BUILDINGS), consumption=sql.Identifier(*CONSUMPTION)
    )
    with conn.cursor() as cur:
        cur.execute(query)
        first, last = cur.fetchone()
    return (first, last) if last is not None else None


def _density(conn: Connection, cell_m: int) -> int:
    query = sql.SQL(_query("energy_heat_density.sql")).format(
        buildings=sql.Identifier(*BUILDINGS), density=sql.Identifier(*DENSITY)
    )
    with conn.cursor() as cur:
        cur.execute(query, {"cell": int(cell_m), "district": DISTRICT_HEATING})
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*DENSITY)))
        return cur.fetchone()[0]


def _register(conn: Connection, cell_m: int, period) -> None:
    buildings = catalog.get(conn, "energy_buildings")
    span = {"annual_period_utc": [period[0].isoformat(), period[1].isoformat()]} if period else {}
    catalog.register(conn, buildings.model_copy(update={
        "properties": {**buildings.properties, **span}, "extent": None}))  # fmt: skip
    layer = Layer(
        id="energy_heat_density", title="Heat demand density",
        description=(
            f"Annual heat demand of the buildings in energy_buildings per {cell_m} m grid cell "
            "(EPSG:25832): heat_demand_mwh, heat_density_mwh_ha, building_count, "
            "buildings_without_data (no consumption in the period), floor_area_m2, "
            "dominant_heat_installation (most heat demand) and share_not_district_heating "
            "(share of known heat demand). Recomputed after every load of buildings or "
            "consumption."
        ),
        theme="energy", kind="vector", table_schema=DENSITY[0], table_name=DENSITY[1],
        geometry_type="Polygon", owner_org=buildings.owner_org, licence=buildings.licence,
        attribution=buildings.attribution, access="open",
        keywords=["energy", "heat planning", "heat density", "grid"],
        properties={"cell_size_m": cell_m, "derived_from": ["energy_buildings",
                    "energy_consumption_hourly"], "sql": "ingest/sql/energy_heat_density.sql",
                    **span},
    )  # fmt: skip
    catalog.register(conn, layer)
    catalog.refresh_statistics(conn, layer.id)
