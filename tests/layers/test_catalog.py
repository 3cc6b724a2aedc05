"""The layer catalog on the real test database."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from layers import catalog
from layers.catalog import Layer, Source
from layers.errors import InvalidInput, NotFound


@pytest.fixture
def streams(database, owner_conn) -> Layer:
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id LIKE 'cat\\_%'")
        cur.execute("DROP TABLE IF EXISTS data.cat_streams")
    with database.connection("ingest") as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE data.cat_streams (id serial PRIMARY KEY, geom geometry(LineString, 25832))"
        )
        cur.execute(
            "INSERT INTO data.cat_streams (geom) VALUES"
            " (ST_GeomFromText('LINESTRING(720000 6170000, 720500 6170800)', 25832)),"
            " (ST_GeomFromText('LINESTRING(721000 6171000, 721200 6171500)', 25832))"
        )
    return Layer(
        id="cat_streams", title="Streams", theme="water", kind="vector",
        table_schema="data", table_name="cat_streams", geometry_type="LineString",
        owner_org="Kystby Kommune", licence="CC-BY-4.0", keywords=["water", "streams"],
        properties={"geometry_column": "geom"},
    )  # fmt: skip


def test_register_get_and_update(database, streams):
    with database.connection("ingest") as conn:
        stored = catalog.register(conn, streams)
    assert stored.created_at is not None and stored.updated_at is not None
    assert stored.storage_srid == 25832
    with database.connection("read") as conn:
        fetched = catalog.get(conn, "cat_streams")
    assert fetched.title == "Streams" and fetched.keywords == ["water", "streams"]
    with database.connection("ingest") as conn:
        again = catalog.register(conn, streams.model_copy(update={"title": "Streams and brooks"}))
    assert again.title == "Streams and brooks"
    assert again.created_at == stored.created_at
    assert again.updated_at >= stored.updated_at


def test_refresh_statistics_counts_rows_and_extent(database, streams):
    with database.connection("ingest") as conn:
        catalog.register(conn, streams)
        layer = catalog.refresh_statistics(conn, "cat_streams")
    assert layer.row_count == 2
    assert layer.extent == (720000.0, 6170000.0, 721200.0, 6171500.0)


def test_list_filters_by_theme_access_and_id(database, streams):
    cables = Layer(
        id="cat_cables", title="Cables", theme="utilities", kind="vector",
        table_schema="restricted", table_name="cat_cables", access="restricted",
    )  # fmt: skip
    with database.connection("ingest") as conn:
        catalog.register(conn, streams)
        catalog.register(conn, cables)
    with database.connection("read") as conn:
        ids = {layer.id for layer in catalog.list_layers(conn)}
        water = {layer.id for layer in catalog.list_layers(conn, theme="water")}
        open_ = {layer.id for layer in catalog.list_layers(conn, access="open")}
        only = catalog.list_layers(conn, ids=["cat_cables"])
    assert {"cat_streams", "cat_cables"} <= ids
    assert "cat_streams" in water and "cat_cables" not in water
    assert "cat_cables" not in open_
    assert [layer.id for layer in only] == ["cat_cables"]


def test_unknown_theme_and_layer_are_named(database):
    with database.connection("read") as conn:
        with pytest.raises(InvalidInput, match="unknown theme 'weather'"):
            catalog.list_layers(conn, theme="weather")
        with pytest.raises(NotFound, match="no layer 'nope'"):
            catalog.get(conn, "nope")


def test_provenance_and_rerun_lookup(database, streams):
    checksum = hashlib.sha256(b"streams file").hexdigest()
    with database.connection("ingest") as conn:
        catalog.register(conn, streams)
        assert catalog.find_source(conn, checksum) is None
        catalog.record_source(conn, Source(
            layer_id="cat_streams", source_file="streams.gpkg", checksum=checksum,
            mode="insert", row_count=2, rows_repaired=1,
        ))  # fmt: skip
    with database.connection("read") as conn:
        found = catalog.find_source(conn, checksum)
        history = catalog.sources(conn, "cat_streams")
    assert found is not None
    assert (found.source_file, found.row_count, found.rows_repaired) == ("streams.gpkg", 2, 1)
    assert found.loaded_by == "geoby_ingest" and found.loaded_at is not None
    assert [s.checksum for s in history] == [checksum]


def test_delete_removes_description_and_provenance(database, streams):
    with database.connection("ingest") as conn:
        catalog.register(conn, streams)
        catalog.delete(conn, "cat_streams")
        with pytest.raises(NotFound):
            catalog.get(conn, "cat_streams")
        with pytest.raises(NotFound):
            catalog.delete(conn, "cat_streams")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "Bad-Id"}, "id"),
        ({"kind": "raster"}, "needs raster_path"),
        ({"table_name": None}, "needs table_schema and table_name"),
        ({"access": "restricted"}, "restricted layers live in schema 'restricted'"),
        ({"theme": "weather"}, "theme"),
    ],
)
def test_invalid_descriptions_are_refused_in_python(streams, fields, message):
    with pytest.raises(ValidationError, match=message):
        Layer(**{**streams.model_dump(), **fields})


def test_database_constraints_hold_without_python(database):
    """The table refuses what the model refuses, for writers that bypass the model."""
    with pytest.raises(InvalidInput), database.connection("ingest") as conn:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO geoby.layers (id, title, theme, kind, table_schema, table_name,"
                " access) VALUES ('cat_leak', 'Leak', 'utilities', 'vector', 'data', 'x',"
                " 'restricted')"
            )


def test_raster_layer(database, owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = 'cat_dem'")
    dem = Layer(
        id="cat_dem", title="Terrain", theme="terrain", kind="raster",
        raster_path="terrain/dem.tif", vertical_datum="DVR90",
        extent=(720000, 6170000, 724000, 6174000),
    )  # fmt: skip
    with database.connection("ingest") as conn:
        stored = catalog.register(conn, dem)
        assert stored.extent == (720000, 6170000, 724000, 6174000)
        assert stored.vertical_datum == "DVR90"
        with pytest.raises(InvalidInput, match="is a raster"):
            catalog.refresh_statistics(conn, "cat_dem")
