"""geoby's handlers for ``/collections/{id}/items`` and ``/items/{fid}``.

They replace pygeoapi's generic ones for geoby's tables and keep its calling
convention (``(api, request, ...) -> (headers, status, content)``), its
HTML templates and its exception documents. What they fix:

- every query parameter is validated; an unknown one is a 400 naming the
  parameters this collection accepts (OGC 17-069r4 A.20/A.21);
- ``bbox`` in any offered ``bbox-crs`` is exact (:mod:`api.ogc.query`);
- ``filter`` is CQL2 text or JSON (not ECQL), parsed by pygeofilter and
  bound as parameters (:mod:`api.ogc.cql`);
- the GeoJSON is assembled in PostGIS; Python only adds the envelope.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any

from pygeoapi import l10n
from pygeoapi.api import API, F_HTML, F_JSON, SYSTEM_LOCALE, APIRequest
from pygeoapi.util import render_j2_template

from api.ogc import config, cql, query
from api.ogc.context import OgcContext
from api.ogc.tables import Table
from layers.crs import crs_uri, epsg_from_uri
from layers.errors import GeobyError, InvalidInput, NotFound

log = logging.getLogger(__name__)

GEOJSON = "application/geo+json"
RESERVED = (
    "f",
    "lang",
    "bbox",
    "bbox-crs",
    "crs",
    "limit",
    "offset",
    "resulttype",
    "datetime",
    "sortby",
    "properties",
    "skipGeometry",
    "filter",
    "filter-lang",
    "filter-crs",
)
ITEM_PARAMS = ("f", "lang", "crs")
_OGC_CODES = {400: "InvalidParameterValue", 404: "NotFound"}

Response = tuple[dict, int, Any]


def items(api: API, request: APIRequest, dataset: str, *, context: OgcContext) -> Response:
    """A page of a collection's features."""
    headers = request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
    try:
        if request.format not in (None, F_JSON, F_HTML):
            raise InvalidInput(
                f"format {request.format!r} is not offered; use json or html", field="f"
            )
        table = context.table(dataset)
        feature_query = parse_items(table, request.params, request.data)
        with context.database.connection("read") as conn:
            page = query.run_page(conn, feature_query)
    except GeobyError as exc:
        error = exc
    else:
        error = None
    if error is not None:  # outside the except block: pygeoapi logs no traceback for it
        return _exception(api, request, headers, error)
    log.info(
        "items %s: %d of %d (bbox=%s, filter=%s, equals=%s)",
        dataset,
        page.returned,
        page.matched,
        request.params.get("bbox"),
        request.params.get("filter") or bool(request.data),
        feature_query.equals,
    )
    headers["Content-Crs"] = f"<{crs_uri(feature_query.out_epsg)}>"
    links = _page_links(api, request, dataset, table, feature_query, page)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if request.format == F_HTML:
        content = {
            "type": "FeatureCollection",
            "features": json.loads(f"[{page.features}]"),
            "numberMatched": page.matched,
            "numberReturned": page.returned,
            "links": links,
            "timeStamp": stamp,
        }
        return headers, HTTPStatus.OK, _html(api, request, dataset, table, content)
    headers["Content-Type"] = GEOJSON
    body = (
        '{"type":"FeatureCollection","features":['
        + page.features
        + f'],"numberMatched":{page.matched},"numberReturned":{page.returned},'
        + f'"timeStamp":"{stamp}","links":{json.dumps(links)}}}'
    )
    return headers, HTTPStatus.OK, body


def item(
    api: API, request: APIRequest, dataset: str, identifier: str, *, context: OgcContext
) -> Response:
    """One feature."""
    headers = request.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
    try:
        if request.format not in (None, F_JSON, F_HTML):
            raise InvalidInput(
                f"format {request.format!r} is not offered; use json or html", field="f"
            )
        table = context.table(dataset)
        _check_known(request.params, ITEM_PARAMS)
        out_epsg = _crs(request.params.get("crs"), "crs")
        try:
            fid = int(identifier)
        except ValueError:
            raise NotFound(f"no item {identifier!r} in {dataset}") from None
        with context.database.connection("read") as conn:
            text = query.run_item(conn, table, fid, out_epsg)
        if text is None:
            raise NotFound(f"no item {identifier!r} in {dataset}")
    except GeobyError as exc:
        error = exc
    else:
        error = None
    if error is not None:  # outside the except block: pygeoapi logs no traceback for it
        return _exception(api, request, headers, error)
    headers["Content-Crs"] = f"<{crs_uri(out_epsg)}>"
    collection = f"{api.get_collections_url()}/{dataset}"
    links = [
        {"rel": "self", "type": GEOJSON, "href": f"{collection}/items/{fid}?f=json"},
        {"rel": "alternate", "type": "text/html", "href": f"{collection}/items/{fid}?f=html"},
        {"rel": "collection", "type": "application/json", "href": collection},
    ]
    if request.format == F_HTML:
        content = json.loads(text)
        content["links"] = links
        content["title"] = str(content["properties"].get(table.title_field or "", fid))
        content["id_field"] = "fid"
        content["collections_path"] = api.get_collections_url()
        content["dataset_path"] = collection
        tpl = api.get_dataset_templates(dataset)
        html = render_j2_template(
            api.tpl_config, tpl, "collections/items/item.html", content, request.locale
        )
        return headers, HTTPStatus.OK, html
    headers["Content-Type"] = GEOJSON
    return headers, HTTPStatus.OK, text[:-1] + f',"links":{json.dumps(links)}}}'


def parse_items(table: Table, params: dict, body: bytes | None) -> query.FeatureQuery:
    """Validate the query parameters of an items request into a :class:`FeatureQuery`."""
    allowed = (*RESERVED, *table.columns)
    _check_known(params, allowed)
    result = query.FeatureQuery(table=table)
    result.limit = _integer(params.get("limit"), "limit", config.DEFAULT_LIMIT, 1)
    result.limit = min(result.limit, config.MAX_LIMIT)
    result.offset = _integer(params.get("offset"), "offset", 0, 0)
    result.out_epsg = _crs(params.get("crs"), "crs")
    resulttype = params.get("resulttype", "results")
    if resulttype not in ("results", "hits"):
        raise InvalidInput("resulttype must be 'results' or 'hits'", field="resulttype")
    result.hits_only = resulttype == "hits"
    if "bbox" in params:
        result.bbox_epsg = _crs(params.get("bbox-crs"), "bbox-crs")
        result.bbox = _bbox(params["bbox"], result.bbox_epsg)
    elif "bbox-crs" in params:
        raise InvalidInput("bbox-crs given without bbox", field="bbox-crs")
    if params.get("datetime"):
        result.interval = query.parse_datetime(params["datetime"])
    result.equals = [
        (name, _typed(table, name, value))
        for name, value in params.items()
        if name in table.columns and name not in RESERVED
    ]
    result.sortby = _sortby(table, params.get("sortby"))
    result.properties = parse_properties(table, params.get("properties"))
    if "skipGeometry" in params:
        flag = params["skipGeometry"].lower()
        if flag not in ("true", "false"):
            raise InvalidInput("skipGeometry must be true or false", field="skipGeometry")
        result.skip_geometry = flag == "true"
    result.cql = parse_filter(table, params, body)
    return result


def parse_properties(table: Table, value: str | None) -> list[str] | None:
    """The ``properties`` parameter: published columns, in the order asked, no repeats."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        raise InvalidInput(
            f"unknown properties {', '.join(unknown)}; this collection has "
            f"{', '.join(table.columns)}",
            field="properties",
        )
    return list(dict.fromkeys(names))


def parse_filter(table: Table, params: dict, body: bytes | None):
    """The CQL2 filter of a request (``filter``, ``filter-lang``, ``filter-crs`` or a JSON body)."""
    text = params.get("filter")
    lang = params.get("filter-lang")
    if text is None and body:
        text, lang = body, lang or "cql2-json"
    if text is None:
        if lang is not None or "filter-crs" in params:
            raise InvalidInput("filter-lang or filter-crs given without filter", field="filter")
        return None
    epsg = _crs(params.get("filter-crs"), "filter-crs")
    ast = cql.parse_filter(text, lang)
    queryables = {
        name: cql.Queryable(name, column.pg_type) for name, column in table.columns.items()
    }
    return cql.to_where(
        ast,
        queryables,
        geometry_column=table.geometry_column,
        filter_srid=query.srid_of(epsg),
        lat_lon=epsg == 4326,
    )


def _check_known(params: dict, allowed) -> None:
    unknown = [name for name in params if name not in allowed]
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {', '.join(repr(n) for n in unknown)}; "
            f"accepted here: {', '.join(allowed)}",
            field=unknown[0],
        )


def _integer(value: str | None, name: str, default: int, minimum: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {value!r}", field=name) from None
    if number < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}", field=name)
    return number


def _crs(value: str | None, name: str) -> int:
    if value is None:
        return query.CRS84
    try:
        return epsg_from_uri(value)
    except GeobyError as exc:
        raise InvalidInput(exc.detail, field=name) from None


def _bbox(value: str, epsg: int) -> tuple[float, float, float, float]:
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidInput(f"bbox must be 4 or 6 numbers, not {value!r}", field="bbox") from None
    if len(numbers) not in (4, 6) or not all(n == n and abs(n) != float("inf") for n in numbers):
        raise InvalidInput(f"bbox must be 4 or 6 finite numbers, not {value!r}", field="bbox")
    box = (
        (numbers[0], numbers[1], numbers[-3], numbers[-2]) if len(numbers) == 6 else tuple(numbers)
    )
    lat = (box[0], box[2]) if epsg == 4326 else (box[1], box[3])
    if epsg in (query.CRS84, 4326) and any(abs(v) > 90 for v in lat):
        raise InvalidInput("bbox latitude outside -90..90", field="bbox")
    lower, upper = (box[0], box[2]) if epsg == 4326 else (box[1], box[3])
    if lower > upper:
        raise InvalidInput("bbox lower corner is above the upper corner", field="bbox")
    if epsg != query.CRS84 and box[0 if epsg != 4326 else 1] > box[2 if epsg != 4326 else 3]:
        raise InvalidInput("bbox lower corner is right of the upper corner", field="bbox")
    return box  # type: ignore[return-value]


def _typed(table: Table, name: str, value: str) -> Any:
    kind, fmt = table.columns[name].json_type
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if fmt == "date":
            return date.fromisoformat(value)
        if fmt == "date-time":
            return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}={value!r} is not a valid {fmt or kind}", field=name) from None
    return value


def _sortby(table: Table, value: str | None) -> list[tuple[str, bool]]:
    if not value:
        return []
    keys = []
    for part in value.split(","):
        part = part.strip()
        ascending = not part.startswith("-")
        name = part.lstrip("+-").strip()
        if name in ("fid", "id"):
            continue
        if name not in table.columns:
            raise InvalidInput(
                f"cannot sort by {name!r}; sortable: {', '.join(table.columns)}", field="sortby"
            )
        keys.append((name, ascending))
    return keys


def _page_links(api, request, dataset, table, feature_query, page) -> list[dict]:
    base = f"{api.get_collections_url()}/{dataset}/items"
    kept = [(k, v) for k, v in request.params.items() if k not in ("f", "offset")]
    encoded = urllib.parse.urlencode(kept, safe=",:/")
    suffix = f"&{encoded}" if encoded else ""
    links = [
        {
            "rel": "self" if request.format != F_HTML else "alternate",
            "type": GEOJSON,
            "title": "This document as GeoJSON",
            "href": f"{base}?f=json{suffix}",
        },
        {
            "rel": "alternate" if request.format != F_HTML else "self",
            "type": "text/html",
            "title": "This document as HTML",
            "href": f"{base}?f=html{suffix}",
        },
        {
            "rel": "collection",
            "type": "application/json",
            "title": table.layer.title,
            "href": f"{api.get_collections_url()}/{dataset}",
        },
    ]
    limit, offset = feature_query.limit, feature_query.offset
    if not feature_query.hits_only and offset + page.returned < page.matched:
        links.append(
            {
                "rel": "next",
                "type": GEOJSON,
                "title": "Next page",
                "href": f"{base}?offset={offset + limit}{suffix}",
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": GEOJSON,
                "title": "Previous page",
                "href": f"{base}?offset={max(0, offset - limit)}{suffix}",
            }
        )
    return links


def _html(api, request, dataset, table, content: dict) -> str:
    uri = f"{api.get_collections_url()}/{dataset}/items"
    content.update(
        items_path=uri,
        dataset_path=uri.rsplit("/", 1)[0],
        collections_path=api.get_collections_url(),
        offset=int(request.params.get("offset", 0) or 0),
        id_field="fid",
    )
    if table.title_field:
        content["title_field"] = table.title_field
    tpl = api.get_dataset_templates(dataset)
    return render_j2_template(
        api.tpl_config, tpl, "collections/items/index.html", content, request.locale
    )


def _exception(api: API, request: APIRequest, headers: dict, exc: GeobyError) -> Response:
    status = exc.status if exc.status in (400, 404, 409, 503) else 500
    if status >= 500:
        log.error("OGC request failed: %s", exc)
    code = _OGC_CODES.get(exc.status, "NoApplicableCode")
    fmt = request.format if request.format == F_HTML else F_JSON
    return api.get_exception(status, headers, fmt, code, l10n.translate(exc.detail, SYSTEM_LOCALE))
