"""The layer catalog: one description of every dataset geoby holds.

Each ingested table or raster is a :class:`Layer` in ``geoby.layers``; each
file loaded into it is a :class:`Source` in ``geoby.layer_sources`` (its
provenance: file, checksum, mode, rows, when and by whom). The OGC API, the
web map and ``geoby layers list`` are all generated from here, so a dataset
that is not in the catalog does not exist for users.

Functions take the connection first and filters as keyword-only arguments.

Examples
--------
>>> layer = Layer(id="buildings", title="Buildings", theme="energy", kind="vector",
...               table_schema="data", table_name="buildings", geometry_type="MultiPolygon")
>>> register(conn, layer)          # doctest: +SKIP
>>> [l.id for l in list_layers(conn, theme="energy")]   # doctest: +SKIP
['buildings']
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any, Literal

from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extras import Json, RealDictCursor
from pydantic import BaseModel, Field, model_validator

from layers.errors import InvalidInput, NotFound

Theme = Literal["terrain", "climate", "water", "energy", "waste", "utilities", "analysis"]
THEMES: tuple[str, ...] = Theme.__args__  # type: ignore[attr-defined]
Kind = Literal["vector", "raster", "table"]
Access = Literal["open", "restricted"]
Mode = Literal["insert", "upsert", "replace"]


class Layer(BaseModel):
    """One dataset: a PostGIS table or a registered raster."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    title: str = Field(min_length=1)
    description: str = ""
    theme: Theme
    kind: Kind
    table_schema: str | None = None
    table_name: str | None = None
    raster_path: str | None = None
    geometry_type: str | None = None
    storage_srid: int = 25832
    vertical_datum: str | None = None
    extent: tuple[float, float, float, float] | None = Field(
        default=None, description="xmin, ymin, xmax, ymax in the storage CRS."
    )
    owner_org: str | None = None
    licence: str = "unknown"
    attribution: str | None = None
    access: Access = "open"
    keywords: list[str] = Field(default_factory=list)
    row_count: int | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @model_validator(mode="after")
    def _where_it_lives(self) -> Layer:
        if self.kind == "raster" and not self.raster_path:
            raise ValueError(f"raster layer {self.id} needs raster_path")
        if self.kind != "raster" and not (self.table_schema and self.table_name):
            raise ValueError(f"{self.kind} layer {self.id} needs table_schema and table_name")
        if self.kind != "raster" and (self.access == "restricted") != (
            self.table_schema == "restricted"
        ):
            raise ValueError(
                f"layer {self.id}: restricted layers live in schema 'restricted', open ones not"
            )
        return self

    @property
    def qualified_table(self) -> sql.Composed:
        """``schema.table`` as safely quoted identifiers."""
        return sql.Identifier(self.table_schema or "data", self.table_name or self.id)


class Source(BaseModel):
    """The provenance of one load of a file into a layer."""

    layer_id: str
    source_file: str
    checksum: str = Field(pattern=r"^[0-9a-f]{64}$")
    mode: Mode
    row_count: int = Field(ge=0)
    rows_repaired: int = 0
    rows_rejected: int = 0
    loaded_by: str | None = None
    loaded_at: datetime | None = None


_COLUMNS = [
    "id", "title", "description", "theme", "kind", "table_schema", "table_name",
    "raster_path", "geometry_type", "storage_srid", "vertical_datum", "owner_org",
    "licence", "attribution", "access", "keywords", "row_count", "properties",
]  # fmt: skip


def _select_sql() -> str:
    return (resources.files("layers") / "sql" / "catalog_select.sql").read_text()


def _row_to_layer(row: dict[str, Any]) -> Layer:
    box = row.pop("bbox")
    row["extent"] = tuple(box) if box else None
    return Layer(**row)


def register(conn: Connection, layer: Layer) -> Layer:
    """Insert or update a layer's description; the caller commits.

    Parameters
    ----------
    conn
        A connection as ``ingest`` or ``admin``.
    layer
        The description. ``extent`` and ``row_count`` may be left unset and
        filled later by :func:`refresh_statistics`.

    Returns
    -------
    Layer
        The stored layer, with its timestamps.
    """
    values = layer.model_dump(include=set(_COLUMNS))
    values["properties"] = Json(values["properties"])
    extent = layer.extent
    query = sql.SQL(
        "INSERT INTO geoby.layers ({cols}, extent) VALUES ({vals}, {extent}) "
        "ON CONFLICT (id) DO UPDATE SET ({cols}, extent, updated_at) = "
        "({excluded}, COALESCE(EXCLUDED.extent, geoby.layers.extent), now())"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
        vals=sql.SQL(", ").join(sql.Placeholder(c) for c in _COLUMNS),
        extent=sql.SQL("ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 25832)")
        if extent
        else sql.SQL("NULL"),
        excluded=sql.SQL(", ").join(
            sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in _COLUMNS
        ),
    )
    if extent:
        values.update(zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True))
    with conn.cursor() as cur:
        cur.execute(query, values)
    return get(conn, layer.id)


def get(conn: Connection, layer_id: str) -> Layer:
    """Return one layer.

    Raises
    ------
    NotFound
        No layer has this id.
    """
    found = list_layers(conn, ids=[layer_id])
    if not found:
        raise NotFound(f"no layer '{layer_id}' in the catalog", field="layer")
    return found[0]


def list_layers(
    conn: Connection,
    *,
    theme: str | None = None,
    access: Access | None = None,
    ids: list[str] | None = None,
) -> list[Layer]:
    """Layers in the catalog, ordered by theme and id, optionally filtered."""
    if theme is not None and theme not in THEMES:
        raise InvalidInput(f"unknown theme '{theme}'; one of {', '.join(THEMES)}", field="theme")
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(_select_sql(), {"theme": theme, "access": access, "ids": ids})
        return [_row_to_layer(dict(row)) for row in cur.fetchall()]


def delete(conn: Connection, layer_id: str) -> None:
    """Remove a layer's description and provenance (not its table or raster)."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM geoby.layers WHERE id = %s", (layer_id,))
        if cur.rowcount == 0:
            raise NotFound(f"no layer '{layer_id}' in the catalog", field="layer")


def record_source(conn: Connection, source: Source) -> None:
    """Record that a file was loaded into a layer (the layer must be registered)."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO geoby.layer_sources (layer_id, source_file, checksum, mode, row_count,"
            " rows_repaired, rows_rejected) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (layer_id, checksum) DO UPDATE SET source_file = EXCLUDED.source_file,"
            " mode = EXCLUDED.mode, row_count = EXCLUDED.row_count,"
            " rows_repaired = EXCLUDED.rows_repaired, rows_rejected = EXCLUDED.rows_rejected,"
            " loaded_by = current_user, loaded_at = now()",
            (
                source.layer_id, source.source_file, source.checksum, source.mode,
                source.row_count, source.rows_repaired, source.rows_rejected,
            ),
        )  # fmt: skip
        cur.execute("UPDATE geoby.layers SET updated_at = now() WHERE id = %s", (source.layer_id,))


def find_source(conn: Connection, checksum: str, *, layer_id: str | None = None) -> Source | None:
    """The most recent load of a file with this checksum, if any (reruns are no-ops)."""
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            "SELECT layer_id, source_file, checksum, mode, row_count, rows_repaired,"
            " rows_rejected, loaded_by, loaded_at FROM geoby.layer_sources"
            " WHERE checksum = %(checksum)s AND (%(layer)s::text IS NULL OR layer_id = %(layer)s)"
            " ORDER BY loaded_at DESC LIMIT 1",
            {"checksum": checksum, "layer": layer_id},
        )
        row = cur.fetchone()
    return Source(**row) if row else None


def sources(conn: Connection, layer_id: str) -> list[Source]:
    """Every recorded load of a layer, oldest first."""
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            "SELECT layer_id, source_file, checksum, mode, row_count, rows_repaired,"
            " rows_rejected, loaded_by, loaded_at FROM geoby.layer_sources"
            " WHERE layer_id = %s ORDER BY loaded_at, id",
            (layer_id,),
        )
        return [Source(**row) for row in cur.fetchall()]


def refresh_statistics(conn: Connection, layer_id: str) -> Layer:
    """Recompute a table layer's row count and extent from its table."""
    layer = get(conn, layer_id)
    if layer.kind == "raster":
        raise InvalidInput(f"layer {layer_id} is a raster; its extent is set when registered")
    geom = sql.Identifier(layer.properties.get("geometry_column", "geom"))
    box = (
        sql.SQL(
            "ST_MakeEnvelope(ST_XMin(ST_Extent({g})), ST_YMin(ST_Extent({g})),"
            " ST_XMax(ST_Extent({g})), ST_YMax(ST_Extent({g})), 25832)"
        ).format(g=geom)
        if layer.kind == "vector"
        else sql.SQL("NULL::geometry")
    )
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "WITH s AS (SELECT count(*) AS n, {box} AS e FROM {table}) "
                "UPDATE geoby.layers SET row_count = s.n, extent = s.e, updated_at = now() "
                "FROM s WHERE id = %s"
            ).format(box=box, table=layer.qualified_table),
            (layer_id,),
        )
    return get(conn, layer_id)
