"""Fixtures of the waste tests that need the platform's data."""

from __future__ import annotations

import pytest

from ingest.pipelines import IngestOptions, ingest
from layers.database import connect


@pytest.fixture(scope="module")
def history_town(database, town_dir):
    """Bins, fleet, facilities, readings and collections of the sample town; buildings."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:  # a module before may have left live readings or none at all
        for table in ("waste_readings", "waste_collections"):
            cur.execute(f"DROP TABLE IF EXISTS data.{table}")  # noqa: S608 - fixed names
            cur.execute("DELETE FROM geoby.layers WHERE id = %s", (table,))
    conn.close()
    waste = town_dir / "waste"
    files = [waste / n for n in ("bins.gpkg", "fleet.csv", "sensor_readings.csv",
                                 "collections.csv")]  # fmt: skip
    options = IngestOptions(show_progress=False)
    ingest(database, "waste", files, options)
    ingest(database, "energy", [town_dir / "buildings.gpkg"], options)
    ingest(database, "water", [town_dir / "roads.gpkg"], options)
    return database
