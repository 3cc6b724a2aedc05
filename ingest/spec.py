"""What a load writes: the target table of one layer and its columns.

A :class:`TableSpec` pairs a catalog :class:`~layers.catalog.Layer` with the
columns of its table (name -> PostgreSQL type), its geometry type and its
natural key (for ``upsert``). Family pipelines declare their specs; for files
of arbitrary columns (a utility's GeoPackage), :func:`infer_columns` derives
them from the data so that no attribute is lost.

Every target table also has the loader's own columns: ``_source`` (the source
label, for ``replace``), ``_record`` (row number or GML id in the source
file) and ``_loaded_at``; spatial tables have ``geom`` in EPSG:25832.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from layers.catalog import Layer
from layers.errors import InvalidInput

PG_TYPES = {
    "text", "integer", "bigint", "double precision", "numeric", "boolean",
    "date", "timestamptz", "jsonb", "smallint", "real",
}  # fmt: skip
GEOMETRY_TYPES = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "Geometry", "GeometryCollection",
}  # fmt: skip
LOADER_COLUMNS = ("_source", "_record", "_loaded_at")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class TableSpec:
    """The target of one layer of a load.

    Parameters
    ----------
    layer
        Its catalog description (schema, table, theme, access, licence...).
    columns
        Attribute columns in order, name -> PostgreSQL type (see ``PG_TYPES``).
    geometry_type
        ``Point``, ``MultiLineString``, ... or ``None`` for a table without
        geometry. Single geometries are promoted to the multi type declared.
    key
        Natural key columns; required for ``upsert``, unique in the table.
    required
        Columns that must not be null; a null names the record and field.
    """

    layer: Layer
    columns: dict[str, str]
    geometry_type: str | None = None
    key: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    indexes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name, pg_type in self.columns.items():
            if not _IDENT.match(name) or name in LOADER_COLUMNS or name in ("geom", "fid"):
                raise ValueError(f"layer {self.layer.id}: bad column name {name!r}")
            if pg_type not in PG_TYPES:
                raise ValueError(f"layer {self.layer.id}: column {name} has unknown type {pg_type}")
        for name in (*self.key, *self.required, *self.indexes):
            if name not in self.columns:
                raise ValueError(f"layer {self.layer.id}: {name} is not a column")
        if self.geometry_type is not None and self.geometry_type not in GEOMETRY_TYPES:
            raise ValueError(f"layer {self.layer.id}: unknown geometry type {self.geometry_type}")

    @property
    def spatial(self) -> bool:
        return self.geometry_type is not None


def column_name(raw: str) -> str:
    """A source field name as a safe lower-case identifier (``Fill Level %`` -> ``fill_level``)."""
    name = re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower()).strip("_") or "field"
    if name[0].isdigit():
        name = "f_" + name
    if name in LOADER_COLUMNS or name in ("geom", "fid"):
        name = "src_" + name.lstrip("_")
    return name[:63]


def pg_type_of(series: pd.Series) -> str:
    """The PostgreSQL type that holds a pandas column without loss."""
    kind = series.dtype.kind
    if kind == "b" or str(series.dtype) == "boolean":
        return "boolean"
    if kind in "iu":
        return "bigint"
    if kind == "f":
        return "double precision"
    if kind == "M":
        return "timestamptz"
    return "text"


def infer_columns(frame: pd.DataFrame, *, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """Columns for every attribute of ``frame``, renamed to safe identifiers.

    Raises
    ------
    InvalidInput
        Two source fields map to the same column name.
    """
    columns: dict[str, str] = {}
    for raw in frame.columns:
        if raw in exclude or raw == getattr(frame, "_geometry_column_name", None):
            continue
        name = column_name(str(raw))
        if name in columns:
            raise InvalidInput(f"fields {raw!r} and another both map to column {name!r}", field=raw)
        columns[name] = pg_type_of(frame[raw])
    return columns
