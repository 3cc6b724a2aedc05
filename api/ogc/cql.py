"""CQL2 filters (text and JSON) as a PostGIS WHERE clause with bound parameters.

pygeofilter 0.4 parses CQL2 (``pygeofilter.parsers.cql2_text`` and
``cql2_json``); this module walks its AST and writes SQL. The writer is
hand-written because pygeofilter's SQL backend inlines every literal into the
SQL text (quoting strings itself) and its SQLAlchemy backend needs an ORM
model: geoby binds every value as a parameter, cast to the property's type
through a fixed allow-list of PostgreSQL type names, and takes identifiers only
from the collection's queryables, so no filter can inject SQL. It walks the
tree top-down rather than with pygeofilter's bottom-up ``Evaluator`` because a
literal's cast depends on the property it is compared with.

Geometry literals are in the filter CRS (``filter-crs``, CRS84 by default) and
are transformed to the storage CRS in SQL. In lon/lat they are densified first
(``ST_Segmentize`` by 0.001 degree), so the edges of a ``BBOX`` stay true
meridians and parallels once transformed.

Where pygeofilter 0.4 departs from CQL2 1.0, geoby mends its input rather
than follow it. The text grammar is pygeofilter's own (its file, WKT
sub-grammar and transformer) with five rules changed: it gave AND and OR one
precedence (``a OR b AND c`` meant ``(a OR b) AND c``, silently wrong) and let
NOT take only a single predicate; it knew temporal predicates only infix
(``seen T_AFTER ...``), not as the standard's ``T_AFTER(seen, ...)``, and not
``T_DISJOINT``; its intervals took neither dates nor open ends (``'..'``); and
a string could not hold a quote (``'O''Brien'``). The JSON parser fills an
envelope's fields from ``{"bbox": [...]}`` in the wrong order and refuses
6-number boxes, GeometryCollections, ``t_disjoint`` and the standard's
three-argument ``between``, so documents are normalised first. pygeofilter
makes ``T_INTERSECTS`` and ``T_OVERLAPS`` one node, read here as
``T_INTERSECTS`` (on an instant property ``T_OVERLAPS`` is always false).
Still refused by the parser: one-letter property names, ``ACCENTI``,
``DWITHIN``, and functions other than ``CASEI``.

Examples
--------
>>> kind = {"kind": Queryable("kind", "text")}
>>> where, params = to_where(parse_filter("kind = 'gas' OR kind = 'heat'", None), kind)
>>> params  # the SQL is ("t"."kind" = %s::text OR "t"."kind" = %s::text)
['gas', 'heat']
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import shapely
import shapely.geometry
from psycopg2 import sql
from pygeofilter import ast, values
from pygeofilter.cql2 import get_op

from api.ogc.cql_parse import LANGUAGES, _is_number, parse_filter

__all__ = ["LANGUAGES", "Queryable", "parse_filter", "to_where"]
from layers.crs import STORAGE_EPSG, epsg_from_uri
from layers.errors import InvalidInput

GEOMETRY_NAMES = ("geometry", "geom")
_DENSIFY_DEG = 0.001  # longest edge of a lon/lat literal, in degrees
# PostgreSQL type -> (cast for bound values, family). The allow-list: a cast is
# only ever one of these names; columns of other types compare as text.
_TYPES: dict[str, tuple[str, str]] = {
    "smallint": ("smallint", "number"), "integer": ("integer", "number"),
    "bigint": ("bigint", "number"), "numeric": ("numeric", "number"),
    "real": ("real", "number"), "double precision": ("double precision", "number"),
    "text": ("text", "text"), "character varying": ("text", "text"), "character": ("text", "text"),
    "boolean": ("boolean", "boolean"), "date": ("date", "date"),
    "timestamp with time zone": ("timestamp with time zone", "time"),
    "timestamp without time zone": ("timestamp without time zone", "time"),
}  # fmt: skip
_ALIASES = {
    "int2": "smallint", "int4": "integer", "int": "integer", "int8": "bigint",
    "float4": "real", "float8": "double precision", "decimal": "numeric", "bool": "boolean",
    "varchar": "character varying", "char": "character", "bpchar": "character",
    "timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
}  # fmt: skip
_INT_RANGE = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
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
# CQL2's temporal predicates over the bounds of a and b (an instant is [t, t]):
# alternatives (OR) of conjunctions (AND) of (bound of a, operator, bound of b).
_TEMPORAL: dict[type, tuple[tuple[tuple[str, str, str], ...], ...]] = {
    ast.TimeAfter: ((("start", ">", "end"),),),
    ast.TimeBefore: ((("end", "<", "start"),),),
    ast.TimeDisjoint: ((("end", "<", "start"),), (("start", ">", "end"),)),
    ast.TimeEquals: ((("start", "=", "start"), ("end", "=", "end")),),
    ast.TimeOverlaps: ((("start", "<=", "end"), ("end", ">=", "start")),),  # T_INTERSECTS
    ast.TimeDuring: ((("start", ">", "start"), ("end", "<", "end")),),
    ast.TimeContains: ((("start", "<", "start"), ("end", ">", "end")),),
    ast.TimeMeets: ((("end", "=", "start"),),),
    ast.TimeMetBy: ((("start", "=", "end"),),),
    ast.TimeOverlappedBy: ((("start", ">", "start"), ("start", "<", "end"), ("end", ">", "end")),),
    ast.TimeBegins: ((("start", "=", "start"), ("end", "<", "end")),),
    ast.TimeBegunBy: ((("start", "=", "start"), ("end", ">", "end")),),
    ast.TimeEnds: ((("start", ">", "start"), ("end", "=", "end")),),
    ast.TimeEndedBy: ((("start", "<", "start"), ("end", "=", "end")),),
}
_DE9IM = re.compile(r"^[012TF*]{9}$")


@dataclass(frozen=True)
class Queryable:
    """One filterable column: its name (also the property name) and PostgreSQL type.

    ``pg_type`` is the name ``format_type`` gives (``'integer'``,
    ``'timestamp with time zone'``, ...); it only selects a cast from a fixed
    allow-list and is never written into SQL.
    """

    name: str
    pg_type: str


def to_where(
    node: ast.AstType,
    queryables: dict[str, Queryable],
    *,
    geometry_column: str | None = "geom",
    storage_srid: int = STORAGE_EPSG,
    filter_srid: int = 4326,
    lat_lon: bool = False,
    alias: str | None = "t",
) -> tuple[sql.Composable, list]:
    """The filter as a SQL condition with its bound parameters, in order.

    Parameters
    ----------
    node
        A filter from :func:`parse_filter`.
    queryables
        The properties a filter may name, by property name.
    geometry_column
        The table's geometry column (named ``geometry`` or ``geom`` in filters
        too), ``None`` for a table without geometry.
    storage_srid, filter_srid
        SRID of the column and of geometry literals (4326 for CRS84).
    lat_lon
        Literals are written latitude first (``filter-crs`` EPSG:4326);
        CRS84, the default, is longitude first.
    alias
        Table alias to qualify columns with, ``None`` for bare names.

    Returns
    -------
    tuple
        A ``psycopg2.sql.Composable`` condition and the list of parameters.

    Raises
    ------
    InvalidInput
        An unknown property, a construct geoby does not offer, a value that
        does not fit its property's type, or an out-of-range coordinate.
    """
    writer = _Writer(queryables, geometry_column, storage_srid, filter_srid, lat_lon, alias)
    try:
        return writer.condition(node), writer.params
    except RecursionError:
        raise InvalidInput("filter is nested too deeply", field="filter") from None


class _Writer:
    def __init__(self, queryables, geometry_column, storage_srid, filter_srid, lat_lon, alias):
        self.queryables = queryables
        self.geometry_column = geometry_column
        self.storage_srid = storage_srid
        self.filter_srid = filter_srid
        self.lat_lon = lat_lon
        self.alias = alias
        self.params: list[Any] = []

    # -- conditions ------------------------------------------------------------

    def condition(self, node: Any) -> sql.Composable:
        if isinstance(node, ast.Not):
            return sql.SQL("NOT ({})").format(self.condition(node.sub_node))
        if isinstance(node, ast.And | ast.Or):
            glue = sql.SQL(" AND " if isinstance(node, ast.And) else " OR ")
            return sql.SQL("({})").format(
                glue.join([self.condition(node.lhs), self.condition(node.rhs)])
            )
        if type(node) in _COMPARISONS:
            lhs, rhs = self._typed_pair(node.lhs, node.rhs)
            return sql.SQL("{} {} {}").format(lhs, sql.SQL(_COMPARISONS[type(node)]), rhs)
        if isinstance(node, ast.Between):
            kind = self._type_of(node.lhs)
            return sql.SQL("{} {}BETWEEN {} AND {}").format(
                self.value(node.lhs), _not(node.not_),
                self.value(node.low, kind), self.value(node.high, kind),
            )  # fmt: skip
        if isinstance(node, ast.In):
            kind = self._type_of(node.lhs)
            lhs = self.value(node.lhs)
            items = sql.SQL(", ").join([self.value(v, kind) for v in node.sub_nodes])
            return sql.SQL("{} {}IN ({})").format(lhs, _not(node.not_), items)
        if isinstance(node, ast.IsNull):
            lhs = node.lhs
            target = self._geometry(lhs) if self._is_geometry(lhs) else self.value(lhs)
            return sql.SQL("{} IS {}NULL").format(target, _not(node.not_))
        if isinstance(node, ast.Like):
            return self._like(node)
        if type(node) in _SPATIAL:
            return sql.SQL(_SPATIAL[type(node)] + "({}, {})").format(
                self._geometry(node.lhs), self._geometry(node.rhs)
            )
        if isinstance(node, ast.BBox):
            return self._bbox_predicate(node)
        if isinstance(node, ast.Relate):
            if not isinstance(node.pattern, str) or not _DE9IM.match(node.pattern):
                raise InvalidInput("RELATE needs a 9-character DE-9IM pattern", field="filter")
            lhs, rhs = self._geometry(node.lhs), self._geometry(node.rhs)
            self.params.append(node.pattern)
            return sql.SQL("ST_Relate({}, {}, %s)").format(lhs, rhs)
        if type(node) in _TEMPORAL:
            return self._temporal(node)
        if isinstance(node, ast.Include):
            return sql.SQL("FALSE" if node.not_ else "TRUE")
        if isinstance(node, bool):
            return sql.SQL("TRUE" if node else "FALSE")
        if isinstance(node, ast.Attribute) and self._type_of(node) == "boolean":
            return self.value(node)
        raise _unsupported(node)

    def _like(self, node: ast.Like) -> sql.Composable:
        # CQL2's wildcards and escape are SQL's ('%', '_', backslash);
        # CASEI(x) LIKE CASEI(p) is a case-blind match.
        lhs, pattern = node.lhs, node.pattern
        blind = node.nocase
        if _is_lower(lhs):
            blind, lhs = True, lhs.arguments[0]
        if _is_lower(pattern):
            blind, pattern = True, pattern.arguments[0]
        if not isinstance(pattern, str):
            raise InvalidInput("LIKE needs a text pattern", field="filter")
        target = self.value(lhs)
        self.params.append(pattern)
        return sql.SQL("{}::text {}{} %s").format(
            target, _not(node.not_), sql.SQL("ILIKE" if blind else "LIKE")
        )

    def _temporal(self, node: ast.TemporalPredicate) -> sql.Composable:
        kind = self._type_of(node.lhs) or self._type_of(node.rhs)
        if kind is not None and _family(kind) not in ("date", "time"):
            raise InvalidInput(
                f"{_describe(node)} compares dates and times; the property is {kind}",
                field="filter",
            )
        kind = kind or "timestamp with time zone"
        lhs, rhs = self._bounds(node.lhs), self._bounds(node.rhs)
        alternatives = []
        for conjunction in _TEMPORAL[type(node)]:
            terms = [
                sql.SQL("{} {} {}").format(
                    self.value(lhs[a], kind), sql.SQL(operator), self.value(rhs[b], kind)
                )
                for a, operator, b in conjunction
            ]
            alternatives.append(sql.SQL("({})").format(sql.SQL(" AND ").join(terms)))
        return sql.SQL("({})").format(sql.SQL(" OR ").join(alternatives))

    def _bounds(self, node: Any) -> dict[str, Any]:
        if isinstance(node, values.Interval):
            if isinstance(node.start, timedelta) or isinstance(node.end, timedelta):
                raise InvalidInput("durations in intervals are not offered", field="filter")
            # '..' (open) is PostgreSQL's -infinity / infinity, valid for dates and times
            start = "-infinity" if node.start is None else node.start
            return {"start": start, "end": "infinity" if node.end is None else node.end}
        return {"start": node, "end": node}

    def _bbox_predicate(self, node: ast.BBox) -> sql.Composable:
        box = (node.minx, node.miny, node.maxx, node.maxy)
        srid, lat_lon = self.filter_srid, self.lat_lon
        if node.crs:
            srid, lat_lon = _crs_of(node.crs)
        target = self._geometry(node.lhs)
        return sql.SQL("ST_Intersects({}, {})").format(target, self._envelope(box, srid, lat_lon))

    # -- values -----------------------------------------------------------------

    def _typed_pair(self, lhs: Any, rhs: Any) -> tuple[sql.Composable, sql.Composable]:
        left, right = self._type_of(lhs), self._type_of(rhs)
        if left and right and not _comparable(left, right):
            raise InvalidInput(f"filter compares {left} with {right}", field="filter")
        return self.value(lhs, right), self.value(rhs, left)

    def _type_of(self, node: Any) -> str | None:
        """The PostgreSQL type of a property or expression; None for a bare literal."""
        if isinstance(node, ast.Attribute):
            return _normal_type(self._queryable(node).pg_type)
        if type(node) in _ARITHMETIC:
            return "numeric"
        if _is_lower(node):
            return "text"
        return None

    def value(self, node: Any, kind: str | None = None) -> sql.Composable:
        """An expression; a literal is bound, cast to ``kind`` where given."""
        if isinstance(node, ast.Attribute):
            column = self._queryable(node)
            ident = sql.Identifier(*filter(None, (self.alias, column.name)))
            if _normal_type(column.pg_type) in _TYPES:
                return ident
            return sql.SQL("{}::text").format(ident)
        if type(node) in _ARITHMETIC:
            return self._arithmetic(node)
        if isinstance(node, ast.Function):
            if _is_lower(node):
                return sql.SQL("lower({}::text)").format(self.value(node.arguments[0], "text"))
            raise InvalidInput(f"filter function {node.name}() is not offered", field="filter")
        if isinstance(node, ast.Node | values.Geometry | values.Envelope | values.Interval):
            raise InvalidInput(f"filter uses {_describe(node)} as a value", field="filter")
        return self.literal(node, kind)

    def _arithmetic(self, node: ast.Arithmetic) -> sql.Composable:
        for side in (node.lhs, node.rhs):
            kind = self._type_of(side)
            if isinstance(side, bool) or not (
                isinstance(side, int | float) or (kind and _family(kind) == "number")
            ):
                raise InvalidInput("arithmetic needs numbers or numeric properties", field="filter")
        lhs, rhs = self.value(node.lhs), self.value(node.rhs)
        if isinstance(node, ast.Div):
            if isinstance(node.rhs, int | float) and node.rhs == 0:
                raise InvalidInput("filter divides by zero", field="filter")
            # numeric, so 7 / 2 is 3.5 as in CQL2, not 3; a zero column gives NULL
            return sql.SQL("({}::numeric / NULLIF({}, 0))").format(lhs, rhs)
        return sql.SQL("({} {} {})").format(lhs, sql.SQL(_ARITHMETIC[type(node)]), rhs)

    def literal(self, node: Any, kind: str | None = None) -> sql.Composable:
        """Bind a literal, converted and cast to ``kind`` (a PostgreSQL type name)."""
        if isinstance(node, timedelta):
            raise InvalidInput("durations are not offered in filters", field="filter")
        if isinstance(node, list):
            raise InvalidInput("a list is only offered after IN", field="filter")
        if not isinstance(node, str | int | float | bool | date | datetime) and node is not None:
            raise InvalidInput(f"filter uses {_describe(node)} as a value", field="filter")
        if isinstance(node, str) and "\x00" in node:  # PostgreSQL text cannot hold NUL
            raise InvalidInput("a string in the filter holds a NUL character", field="filter")
        if kind is None or node is None:
            self.params.append(node)
            return sql.SQL("%s")
        value, cast = _convert(node, kind)
        self.params.append(value)
        return sql.SQL("%s::" + cast)  # cast comes only from _TYPES, never from input

    # -- geometry ---------------------------------------------------------------

    def _is_geometry(self, node: Any) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.name not in self.queryables
            and (node.name in GEOMETRY_NAMES or node.name == self.geometry_column)
        )

    def _geometry(self, node: Any) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            if not self._is_geometry(node):
                self._queryable(node)  # an unknown name is reported as such
                raise InvalidInput(
                    f"{node.name!r} is not the geometry; spatial filters use 'geometry'",
                    field="filter",
                )
            if self.geometry_column is None:
                raise InvalidInput("this collection has no geometry to filter on", field="filter")
            return sql.Identifier(*filter(None, (self.alias, self.geometry_column)))
        if isinstance(node, values.Geometry):
            return self._geometry_literal(node.geometry)
        box = _box(node)
        if box is None:
            raise InvalidInput(f"filter uses {_describe(node)} as a geometry", field="filter")
        return self._envelope(box, self.filter_srid, self.lat_lon)

    def _geometry_literal(self, geojson: dict) -> sql.Composable:
        srid, lat_lon = self.filter_srid, self.lat_lon
        name = (geojson.get("crs") or {}).get("properties", {}).get("name")
        if name:  # EWKT "SRID=n;..." is x/y whatever the CRS
            srid, lat_lon = _crs_of(name)[0], False
        try:
            shape = shapely.geometry.shape({k: v for k, v in geojson.items() if k != "crs"})
        except Exception as exc:  # noqa: BLE001 - shapely raises several kinds
            raise InvalidInput(f"geometry literal is not valid: {exc}", field="filter") from None
        if not shape.is_valid:
            reason = shapely.is_valid_reason(shape)
            raise InvalidInput(f"geometry literal is not valid: {reason}", field="filter")
        if lat_lon:
            shape = shapely.transform(shape, lambda xy: xy[:, ::-1])
        _check_range(shape.bounds, srid)
        self.params += [json.dumps(shapely.geometry.mapping(shape)), srid]
        literal = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON(%s), %s)")
        return self._to_storage(literal, srid)

    def _envelope(self, box: tuple, srid: int, lat_lon: bool) -> sql.Composable:
        x1, y1, x2, y2 = (box[1], box[0], box[3], box[2]) if lat_lon else box
        if x1 > x2 or y1 > y2:
            raise InvalidInput(
                "a BBOX in the filter has its lower corner above or right of its upper one",
                field="filter",
            )
        _check_range((x1, y1, x2, y2), srid)
        self.params += [x1, y1, x2, y2, srid]
        return self._to_storage(sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, %s)"), srid)

    def _to_storage(self, geometry: sql.Composable, srid: int) -> sql.Composable:
        if srid == 4326:  # edges stay the straight lon/lat lines they were written as
            self.params.append(_DENSIFY_DEG)
            geometry = sql.SQL("ST_Segmentize({}, %s)").format(geometry)
        if srid == self.storage_srid:
            return geometry
        self.params.append(self.storage_srid)
        return sql.SQL("ST_Transform({}, %s)").format(geometry)

    def _queryable(self, node: ast.Attribute) -> Queryable:
        try:
            return self.queryables[node.name]
        except KeyError:
            if self._is_geometry(node):
                raise InvalidInput(
                    f"{node.name!r} is the geometry; use it in spatial predicates", field="filter"
                ) from None
            names = ", ".join(sorted(self.queryables))
            raise InvalidInput(
                f"unknown property {node.name!r} in filter; queryables are: {names}",
                field="filter",
            ) from None


# -- conversions ----------------------------------------------------------------


def _normal_type(pg_type: str) -> str:
    name = re.sub(r"\(.*?\)", "", pg_type).strip().lower()
    name = " ".join(name.split())
    return _ALIASES.get(name, name)


def _family(kind: str) -> str:
    return _TYPES.get(kind, ("text", "text"))[1]


def _comparable(left: str, right: str) -> bool:
    families = {_family(left), _family(right)}
    return len(families) == 1 or families == {"date", "time"}


def _convert(value: Any, kind: str) -> tuple[Any, str]:
    """A literal as a value of ``kind`` and the cast to bind it with."""
    cast, family = _TYPES.get(kind, ("text", "text"))
    wrong = InvalidInput(f"{value!r} in the filter is not a valid {kind}", field="filter")
    if family == "text":
        return (value if isinstance(value, str) else _text(value)), "text"
    if family == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise wrong
        return value, cast
    if family == "number":
        if isinstance(value, str):
            try:
                value = float(value) if re.search(r"[.eE]", value) else int(value)
            except ValueError:
                raise wrong from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        limit = _INT_RANGE.get(kind)
        if limit and not (isinstance(value, int) and -limit <= value < limit):
            return value, "numeric"  # 400.5 or 2**40 against an integer column
        return value, cast
    # dates and times; '-infinity' / 'infinity' are the open ends of an interval
    if value in ("-infinity", "infinity"):
        return value, cast
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else _instant(value)
        except ValueError:
            raise wrong from None
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)  # CQL2 times are UTC
        if kind == "timestamp without time zone":
            return value.astimezone(UTC).replace(tzinfo=None), cast
        return value, "timestamp with time zone"
    if isinstance(value, date):  # midnight UTC against a time, not the session's zone
        if family == "time":
            return _convert(datetime(value.year, value.month, value.day, tzinfo=UTC), kind)
        return value, "date"
    raise wrong


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("z", "Z"))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if isinstance(value, date) else str(value)


def _check_range(bounds: tuple, srid: int) -> None:
    if not all(abs(v) < float("inf") for v in bounds):
        raise InvalidInput("a coordinate in the filter is not a finite number", field="filter")
    if srid == 4326 and not (-180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90):  # fmt: skip
        raise InvalidInput(
            "a longitude or latitude in the filter is out of range "
            "(longitude -180..180, latitude -90..90; is filter-crs right?)",
            field="filter",
        )


def _crs_of(name: str) -> tuple[int, bool]:
    """SRID and lat/lon axis order of a CRS named inside a filter."""
    match = re.match(r"^urn:ogc:def:crs:EPSG::(\d+)$", name.strip(), re.IGNORECASE)
    try:
        epsg = epsg_from_uri(f"EPSG:{match.group(1)}" if match else name)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="filter") from None
    return (4326, False) if epsg == 0 else (epsg, epsg == 4326)


def _box(node: Any) -> tuple[float, float, float, float] | None:
    if isinstance(node, values.Envelope):  # text ENVELOPE(west east north south)
        return (node.x1, min(node.y1, node.y2), node.x2, max(node.y1, node.y2))
    if isinstance(node, ast.Function) and node.name.lower() == "bbox":
        numbers = node.arguments
        if len(numbers) == 6:
            numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
        if len(numbers) == 4 and all(_is_number(n) for n in numbers):
            return tuple(float(n) for n in numbers)  # type: ignore[return-value]
    return None


def _is_lower(node: Any) -> bool:
    return (
        isinstance(node, ast.Function)
        and node.name.lower() in ("lower", "casei")
        and len(node.arguments) == 1
    )


def _not(negated: bool) -> sql.Composable:
    return sql.SQL("NOT " if negated else "")


def _describe(node: Any) -> str:
    if isinstance(node, ast.Node):
        op = get_op(node)
        if isinstance(node, ast.TimeOverlaps):
            op = "t_intersects"
        return op.upper() if op and op.isidentifier() else type(node).__name__
    return f"a {type(node).__name__} literal"


def _unsupported(node: Any) -> InvalidInput:
    return InvalidInput(
        f"filter uses {_describe(node)}, which geoby does not offer", field="filter"
    )
