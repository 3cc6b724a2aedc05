"""CQL2 filters (text and JSON) as a PostGIS WHERE clause with bound parameters.

pygeofilter parses CQL2 (``pygeofilter.parsers.cql2_text`` and
``cql2_json``); this module walks its AST and writes SQL. It is written by
hand because pygeofilter's SQL backend inlines literals into the SQL text and
its SQLAlchemy backend needs an ORM model; geoby binds every value as a
parameter and takes identifiers only from the collection's queryables, so a
filter cannot inject SQL.

Geometry literals are in the filter CRS (``filter-crs``, CRS84 by default)
and are transformed to the storage CRS in SQL; a ``BBOX`` literal is
densified first, so its edges stay true lines of longitude and latitude.

Known limits of pygeofilter 0.4, where geoby follows the parser: the CQL2
text grammar fails on the temporal functions (``T_AFTER(...)``), which the
JSON encoding accepts; the JSON encoding maps a ``{"bbox": [...]}`` literal
onto its envelope fields in the wrong order, which is undone here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg2 import sql
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text

from layers.crs import STORAGE_EPSG
from layers.errors import InvalidInput

LANGUAGES = ("cql2-text", "cql2-json")
GEOMETRY_NAMES = ("geometry", "geom")
# Longest edge of a densified BBOX literal, in degrees.
_DENSIFY_DEG = 0.001
_CASTS = frozenset(
    {"smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean", "date",
     "text", "timestamp with time zone", "timestamp without time zone"}
)  # fmt: skip
_COMPARISONS = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
    ast.GreaterThan: ">", ast.GreaterEqual: ">=",
}  # fmt: skip
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
_SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects", ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryContains: "ST_Contains", ast.GeometryWithin: "ST_Within",
    ast.GeometryTouches: "ST_Touches", ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps", ast.GeometryEquals: "ST_Equals",
}  # fmt: skip
# Temporal predicates on instants: the operator comparing the property with the literal.
_TEMPORAL = {
    ast.TimeAfter: ">", ast.TimeBefore: "<", ast.TimeEquals: "=",
}  # fmt: skip


@dataclass(frozen=True)
class Queryable:
    """One filterable column: its name (also the property name) and PostgreSQL type."""

    name: str
    pg_type: str


def parse_filter(text: str | bytes | dict, lang: str | None = None) -> ast.Node:
    """Parse a CQL2 filter; ``lang`` defaults to text for strings, JSON for documents.

    Raises
    ------
    InvalidInput
        Unknown language or a syntax error (the parser's message, shortened).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if lang is None:
        lang = (
            "cql2-json" if isinstance(text, dict) or text.lstrip().startswith("{") else "cql2-text"
        )
    if lang not in LANGUAGES:
        raise InvalidInput(
            f"filter-lang {lang!r} is not offered; use {' or '.join(LANGUAGES)}",
            field="filter-lang",
        )
    try:
        if lang == "cql2-json":
            return parse_cql2_json(text if isinstance(text, dict) else json.loads(text))
        return parse_cql2_text(str(text))
    except Exception as exc:  # noqa: BLE001 - lark and json raise many kinds
        message = " ".join(str(exc).split())[:300]
        raise InvalidInput(f"filter is not valid {lang}: {message}", field="filter") from None


def to_where(
    node: ast.Node,
    queryables: dict[str, Queryable],
    *,
    geometry_column: str | None = "geom",
    storage_srid: int = STORAGE_EPSG,
    filter_srid: int = 4326,
    lat_lon: bool = False,
    alias: str = "t",
) -> tuple[sql.Composable, list]:
    """The filter as SQL over ``alias`` with its bound parameters, in order.

    ``lat_lon`` says the literals are written latitude first (``filter-crs``
    EPSG:4326); CRS84, the default, is longitude first.
    """
    writer = _Writer(queryables, geometry_column, storage_srid, filter_srid, alias)
    writer.lat_lon = lat_lon
    return writer.write(node), writer.params


class _Writer:
    def __init__(self, queryables, geometry_column, storage_srid, filter_srid, alias) -> None:
        self.queryables = queryables
        self.geometry_column = geometry_column
        self.storage_srid = storage_srid
        self.filter_srid = filter_srid
        self.alias = alias
        self.params: list[Any] = []
        self.lat_lon = False

    # -- conditions ------------------------------------------------------------

    def write(self, node: Any) -> sql.Composable:
        if isinstance(node, ast.Not):
            return sql.SQL("NOT ({})").format(self.write(node.sub_node))
        if isinstance(node, ast.And | ast.Or):
            glue = " AND " if isinstance(node, ast.And) else " OR "
            return sql.SQL("({})").format(
                sql.SQL(glue).join([self.write(node.lhs), self.write(node.rhs)])
            )
        if type(node) in _COMPARISONS:
            lhs, rhs = self._pair(node.lhs, node.rhs)
            return sql.SQL("{} {} {}").format(lhs, sql.SQL(_COMPARISONS[type(node)]), rhs)
        if isinstance(node, ast.Between):
            hint = self._hint(node.lhs)
            return sql.SQL("{} {}BETWEEN {} AND {}").format(
                self.value(node.lhs), sql.SQL("NOT " if node.not_ else ""),
                self.value(node.low, hint), self.value(node.high, hint),
            )  # fmt: skip
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.In):
            hint = self._hint(node.lhs)
            items = sql.SQL(", ").join(self.value(v, hint) for v in node.sub_nodes)
            return sql.SQL("{} {}IN ({})").format(
                self.value(node.lhs), sql.SQL("NOT " if node.not_ else ""), items
            )
        if isinstance(node, ast.IsNull):
            return sql.SQL("{} IS {}NULL").format(
                self.value(node.lhs), sql.SQL("NOT " if node.not_ else "")
            )
        if type(node) in _SPATIAL:
            return sql.SQL("{}({}, {})").format(
                sql.SQL(_SPATIAL[type(node)]), self.geometry(node.lhs), self.geometry(node.rhs)
            )
        if isinstance(node, ast.TemporalPredicate):
            return self._temporal(node)
        if isinstance(node, bool):
            return sql.SQL("TRUE" if node else "FALSE")
        if isinstance(node, ast.Attribute) and self._queryable(node).pg_type == "boolean":
            return self.value(node)
        raise InvalidInput(
            f"filter uses {_describe(node)}, which geoby does not offer", field="filter"
        )

    def _like(self, node: ast.Like) -> sql.Composable:
        # CQL2's wildcards are SQL's ('%' and '_'); CASEI(x) LIKE p is a case-blind match.
        lhs = node.lhs
        blind = node.nocase or (
            isinstance(lhs, ast.Function) and lhs.name.lower() in ("lower", "casei")
        )
        if blind and isinstance(lhs, ast.Function):
            lhs = lhs.arguments[0]
        pattern = node.pattern
        if isinstance(pattern, ast.Function) and pattern.name.lower() in ("lower", "casei"):
            blind, pattern = True, pattern.arguments[0]
        if not isinstance(pattern, str):
            raise InvalidInput("LIKE needs a text pattern", field="filter")
        operator = "ILIKE" if blind else "LIKE"
        target = self.value(lhs)
        self.params.append(pattern)
        return sql.SQL("{}::text {}{} %s").format(
            target, sql.SQL("NOT " if node.not_ else ""), sql.SQL(operator)
        )

    def _temporal(self, node: ast.TemporalPredicate) -> sql.Composable:
        lhs = self.value(node.lhs)
        literal = node.rhs
        if type(node) in _TEMPORAL and not isinstance(literal, values.Interval):
            return sql.SQL("{} {} {}").format(
                lhs, sql.SQL(_TEMPORAL[type(node)]), self.literal(literal)
            )
        if isinstance(literal, values.Interval):
            start, end = literal.start, literal.end
            if isinstance(node, ast.TimeDuring):
                return sql.SQL("({} > {} AND {} < {})").format(
                    lhs, self.literal(start), lhs, self.literal(end)
                )
            if isinstance(node, ast.TimeAfter):
                return sql.SQL("{} > {}").format(lhs, self.literal(end))
            if isinstance(node, ast.TimeBefore):
                return sql.SQL("{} < {}").format(lhs, self.literal(start))
        if isinstance(node, ast.TimeDisjoint) and not isinstance(literal, values.Interval):
            return sql.SQL("{} <> {}").format(lhs, self.literal(literal))
        raise InvalidInput(
            f"filter uses {_describe(node)}, which geoby does not offer", field="filter"
        )

    # -- expressions -------------------------------------------------------------

    def _pair(self, lhs: Any, rhs: Any) -> tuple[sql.Composable, sql.Composable]:
        return self.value(lhs, self._hint(rhs)), self.value(rhs, self._hint(lhs))

    def _hint(self, node: Any) -> str | None:
        if isinstance(node, ast.Attribute) and node.name not in GEOMETRY_NAMES:
            kind = self._queryable(node).pg_type
            return kind if kind in _CASTS else "text"
        return None

    def value(self, node: Any, cast: str | None = None) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            column = self._queryable(node)
            ident = sql.Identifier(self.alias, column.name)
            return ident if column.pg_type in _CASTS else sql.SQL("{}::text").format(ident)
        if type(node) in _ARITHMETIC:
            return sql.SQL("({} {} {})").format(
                self.value(node.lhs), sql.SQL(_ARITHMETIC[type(node)]), self.value(node.rhs)
            )
        if isinstance(node, ast.Function):
            if node.name.lower() in ("lower", "casei") and len(node.arguments) == 1:
                return sql.SQL("lower({}::text)").format(self.value(node.arguments[0]))
            raise InvalidInput(f"filter function {node.name}() is not offered", field="filter")
        if isinstance(node, ast.Node | values.Geometry | values.Envelope):
            raise InvalidInput(f"filter uses {_describe(node)} as a value", field="filter")
        return self.literal(node, cast)

    def literal(self, node: Any, cast: str | None = None) -> sql.Composable:
        if isinstance(node, timedelta):
            raise InvalidInput("durations are not offered in filters", field="filter")
        if isinstance(node, str | int | float | bool | date | datetime) or node is None:
            self.params.append(node)
            if cast and not isinstance(node, bool | type(None)):
                return sql.SQL("%s::" + cast)
            return sql.SQL("%s")
        raise InvalidInput(f"filter uses {_describe(node)} as a value", field="filter")

    def geometry(self, node: Any) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            if node.name not in GEOMETRY_NAMES and node.name != self.geometry_column:
                raise InvalidInput(
                    f"{node.name!r} is not the geometry; spatial filters use 'geometry'",
                    field="filter",
                )
            if self.geometry_column is None:
                raise InvalidInput("this collection has no geometry to filter on", field="filter")
            return sql.Identifier(self.alias, self.geometry_column)
        if isinstance(node, values.Geometry):
            self.params += [json.dumps(node.geometry), self.filter_srid]
            literal = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON(%s), %s)")
            if self.lat_lon:
                literal = sql.SQL("ST_FlipCoordinates({})").format(literal)
            if self.filter_srid == 4326:  # edges stay straight in lon/lat, as written
                self.params.append(_DENSIFY_DEG)
                literal = sql.SQL("ST_Segmentize({}, %s)").format(literal)
            return self._to_storage(literal)
        box = _box(node)
        if box is None:
            raise InvalidInput(f"filter uses {_describe(node)} as a geometry", field="filter")
        x1, y1, x2, y2 = (box[1], box[0], box[3], box[2]) if self.lat_lon else box
        if x1 > x2 or y1 > y2:
            raise InvalidInput("a BBOX in the filter has its lower corner above or right of its upper one",
                               field="filter")  # fmt: skip
        self.params += [x1, y1, x2, y2, self.filter_srid]
        envelope = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, %s)")
        if self.filter_srid == 4326:
            self.params.append(_DENSIFY_DEG)
            envelope = sql.SQL("ST_Segmentize({}, %s)").format(envelope)
        return self._to_storage(envelope)

    def _to_storage(self, geometry: sql.Composable) -> sql.Composable:
        if self.filter_srid == self.storage_srid:
            return geometry
        self.params.append(self.storage_srid)
        return sql.SQL("ST_Transform({}, %s)").format(geometry)

    def _queryable(self, node: ast.Attribute) -> Queryable:
        try:
            return self.queryables[node.name]
        except KeyError:
            names = ", ".join(sorted(self.queryables))
            raise InvalidInput(
                f"unknown property {node.name!r} in filter; queryables are: {names}",
                field="filter",
            ) from None


def _box(node: Any) -> tuple[float, float, float, float] | None:
    if isinstance(node, values.Envelope):
        # pygeofilter 0.4's cql2_json builds Envelope(*bbox): its fields hold
        # minx, miny, maxx, maxy in the order x1, x2, y1, y2.
        return (node.x1, node.x2, node.y1, node.y2)
    if isinstance(node, ast.Function) and node.name.lower() == "bbox":
        numbers = node.arguments
        if len(numbers) == 6:
            numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
        if len(numbers) == 4 and all(isinstance(n, int | float) for n in numbers):
            return tuple(float(n) for n in numbers)  # type: ignore[return-value]
    return None


def _describe(node: Any) -> str:
    if isinstance(node, ast.Node):
        return type(node).__name__
    return f"a {type(node).__name__} literal"
