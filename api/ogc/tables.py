"""What the OGC API knows of each published table: columns, types, geometry, time.

Read once from the database catalog (``information_schema`` and
``geoby.layers``) when the OGC configuration is built, so a request never
reflects a table. Bookkeeping columns (``_source``, ``_record``,
``_loaded_at``) are never published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from layers.catalog import Layer

HIDDEN_COLUMNS = frozenset({"fid", "geom", "_source", "_record", "_loaded_at"})

# PostgreSQL type -> JSON Schema type and format, for queryables and schemas.
_JSON_TYPES: dict[str, tuple[str, str | None]] = {
    "smallint": ("integer", None),
    "integer": ("integer", None),
    "bigint": ("integer", None),
    "numeric": ("number", None),
    "real": ("number", None),
    "double precision": ("number", None),
    "boolean": ("boolean", None),
    "date": ("string", "date"),
    "timestamp with time zone": ("string", "date-time"),
    "timestamp without time zone": ("string", "date-time"),
    "jsonb": ("object", None),
    "json": ("object", None),
}
# Columns named so are the layer's time, in this order of preference.
_INSTANT_NAMES = ("time", "observed_at", "timestamp", "datetime", "date")
_INTERVAL_NAMES = (
    ("start_time", "end_time"),
    ("start_date", "end_date"),
    ("valid_from", "valid_to"),
    ("start", "end"),
)


@dataclass(frozen=True)
class Column:
    """One published attribute column."""

    name: str
    pg_type: str

    @property
    def json_type(self) -> tuple[str, str | None]:
        """JSON Schema ``type`` and ``format`` of the column."""
        return _JSON_TYPES.get(self.pg_type, ("string", None))


@dataclass(frozen=True)
class Table:
    """A published table: the layer plus what a query needs to know of it."""

    layer: Layer
    columns: dict[str, Column]
    geometry_column: str | None
    geometry_type: str | None
    time_start: str | None = None
    time_end: str | None = None
    id_column: str = "fid"
    title_field: str | None = None
    extras: dict = field(default_factory=dict)

    @property
    def identifier(self) -> sql.Identifier:
        """The table's schema-qualified name."""
        return sql.Identifier(self.layer.table_schema, self.layer.table_name)

    @property
    def time_field(self) -> str | None:
        """The instant (or interval start) column used by ``datetime``."""
        return self.time_start


def describe(conn: Connection, layer: Layer) -> Table:
    """Read the columns of a table layer and pick its geometry and time columns."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, NULL)"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            (layer.table_schema, layer.table_name),
        )
        found = cur.fetchall()
    geometry_column = next((name for name, kind in found if kind == "geometry"), None)
    columns = {
        name: Column(name, kind)
        for name, kind in found
        if name not in HIDDEN_COLUMNS and kind != "geometry"
    }
    start, end = _time_columns(columns)
    title = next((c for c in ("name", "title", "label") if c in columns), None)
    return Table(
        layer=layer,
        columns=columns,
        geometry_column=geometry_column,
        geometry_type=layer.geometry_type,
        time_start=start,
        time_end=end,
        title_field=title,
    )


def _time_columns(columns: dict[str, Column]) -> tuple[str | None, str | None]:
    temporal = {n for n, c in columns.items() if c.json_type[1] in ("date", "date-time")}
    for first, last in _INTERVAL_NAMES:
        if first in temporal and last in temporal:
            return first, last
    for name in _INSTANT_NAMES:
        if name in temporal:
            return name, None
    return (next(iter(sorted(temporal))), None) if len(temporal) == 1 else (None, None)
