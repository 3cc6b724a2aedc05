"""Mapping a source's fields onto a layer's columns, keeping the rest.

Family layers have a fixed set of columns that analyses rely on (a sewer
pipe's ``upstream_invert_m``, a bin's ``fraction``). Source files name them in
many ways (``binId``, ``Bin ID``, ``container_id``), so each column lists the
aliases it accepts, compared as safe lower-case identifiers
(:func:`ingest.spec.column_name`, with ``binId`` -> ``binid``). Every source
field that maps to no column is kept, per record, in a ``properties`` jsonb
column: nothing a publisher sent is lost.

Examples
--------
>>> fields = (Field("bin_id", "text", ("id", "container_id")), Field("capacity_l", "double precision"))
>>> match(["Container ID", "capacity_l", "colour"], fields)
{'Container ID': 'bin_id', 'capacity_l': 'capacity_l'}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from ingest.spec import column_name

PROPERTIES = "properties"


@dataclass(frozen=True)
class Field:
    """One column of a family layer and the source names it accepts.

    Parameters
    ----------
    name
        The column (also accepted as a source name).
    pg_type
        Its PostgreSQL type (see :data:`ingest.spec.PG_TYPES`).
    aliases
        Other source names, as safe identifiers, in order of preference.
    """

    name: str
    pg_type: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def normal(raw: str) -> str:
    """A source field name in the form aliases are written in."""
    return column_name(str(raw))


def match(source_columns: Iterable[str], fields: Sequence[Field]) -> dict[str, str]:
    """Which source column fills which field (source name -> field name).

    A field takes the first of its names found among the source columns; a
    source column fills at most one field.
    """
    by_normal: dict[str, str] = {}
    for raw in source_columns:
        by_normal.setdefault(normal(raw), raw)
    mapping: dict[str, str] = {}
    for field in fields:
        for name in field.names:
            raw = by_normal.get(name)
            if raw is not None and raw not in mapping:
                mapping[raw] = field.name
                break
    return mapping


def name_tokens(name: str) -> list[str]:
    """The words of a layer or file name (``dhmqc_roads_1km`` -> ``dhmqc, roads, 1km``)."""
    text = name.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    return [t for t in re.split(r"[^a-z0-9]+", text) if t]


def columns_of(fields: Sequence[Field], *, properties: bool = True) -> dict[str, str]:
    """The spec columns for ``fields`` (plus ``properties jsonb``)."""
    columns = {f.name: f.pg_type for f in fields}
    if properties:
        columns[PROPERTIES] = "jsonb"
    return columns


def describe(fields: Sequence[Field], limit: int = 8) -> str:
    """The first columns of a kind, for messages listing what a kind expects."""
    names = [f.name for f in fields[:limit]]
    return ", ".join(names) + (", ..." if len(fields) > limit else "")


def remap(
    frame: pd.DataFrame,
    mapping: dict[str, str],
    fields: Sequence[Field],
    *,
    skip: Iterable[str] = (),
    properties: bool = True,
) -> pd.DataFrame:
    """Columns renamed to their fields, missing fields empty, the rest in ``properties``.

    Parameters
    ----------
    frame
        Source records (with ``_record``; a GeoDataFrame keeps its geometry).
    mapping
        From :func:`match`.
    fields
        The layer's fields.
    skip
        Source columns neither mapped nor kept.
    properties
        Keep unmapped fields in a ``properties`` column.
    """
    geometry = getattr(frame, "_geometry_column_name", None)
    skipped = {"_record", geometry, *skip}
    out = pd.DataFrame(index=frame.index)
    out["_record"] = frame["_record"].astype(str)
    reverse = {target: source for source, target in mapping.items()}
    for field in fields:
        source = reverse.get(field.name)
        out[field.name] = frame[source].astype(object) if source is not None else None
    if properties:
        rest = [c for c in frame.columns if c not in mapping and c not in skipped]
        out[PROPERTIES] = json_records(frame[rest]) if rest else None
    return out


def with_geometry(frame: pd.DataFrame, source: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with the geometry and CRS of ``source`` (same rows, same order)."""
    return gpd.GeoDataFrame(frame, geometry=source.geometry.to_numpy(), crs=source.crs)


def generated_ids(prefix: str, start: int, count: int) -> list[str]:
    """Identifiers for records that carry none: ``<prefix>-<n>``, n counting from 1."""
    return [f"{prefix}-{n}" for n in range(start + 1, start + count + 1)]


def json_records(frame: pd.DataFrame) -> list[dict | None]:
    """One dict per row of the non-empty values (``None`` for a row with none)."""
    records = frame.astype(object).to_dict("records")
    return [_clean(r) or None for r in records]


def _clean(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        if value is None or value is pd.NA or value is pd.NaT:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if isinstance(value, str) and not value.strip():
            continue
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
