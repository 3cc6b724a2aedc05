"""Checks of input that pygeoapi's own handlers answer with a 500 instead of a 400.

geoby routes coverages, the records catalog's items and process execution to
pygeoapi's handlers. Fuzzing them (``tests/reliability/test_contract.py``)
found inputs they fail on with an internal error:

* coverage: a ``bbox`` of the wrong length or order is answered 500, and any
  ``bbox-crs`` (even a valid CRS URI) is handed to ``CRS.from_epsg``, which
  raises on anything but a bare EPSG number;
* records items: an empty ``sortby`` element (``sortby=,title``) raises
  ``IndexError``;
* execution: a body that is not UTF-8 raises ``UnicodeDecodeError``, and one
  that is JSON but not an object raises ``AttributeError``.

Each guard checks its input first and answers a 400 naming the parameter, in
the OGC exception format, or hands over to pygeoapi unchanged.
"""

from __future__ import annotations

import json
import math
from http import HTTPStatus

import pygeoapi.api.coverages as coverages_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
from pygeoapi.api import API, F_HTML, F_JSON, APIRequest

from layers.crs import epsg_from_uri
from layers.errors import InvalidInput

Answer = tuple[dict, int, str | bytes]


def coverage(api: API, request: APIRequest, dataset: str) -> Answer:
    """A coverage, with ``bbox`` and ``bbox-crs`` checked and the CRS passed as EPSG."""
    try:
        params = dict(request.params)
        if params.get("bbox") is not None:
            _bbox(params["bbox"])
        if params.get("bbox-crs") is not None:
            # pygeoapi's rasterio provider reads the CRS with CRS.from_epsg; CRS84 is lon/lat.
            params["bbox-crs"] = epsg_from_uri(params["bbox-crs"]) or 4326
            request._args = params
    except InvalidInput as exc:
        return _bad(api, request, exc)
    return coverages_api.get_collection_coverage(api, request, dataset)


def records(api: API, request: APIRequest, dataset: str) -> Answer:
    """The records catalog's items, with ``sortby`` checked."""
    sortby = request.params.get("sortby")
    if sortby is not None and any(not part.strip("+- ") for part in sortby.split(",")):
        exc = InvalidInput("sortby has an empty property name", field="sortby")
        return _bad(api, request, exc)
    return itemtypes_api.get_collection_items(api, request, dataset)


def execute(api: API, request: APIRequest, process_id: str) -> Answer:
    """Execute a process, once its body is known to be a UTF-8 JSON object."""
    if request.data:
        try:
            body = json.loads(request.data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _bad(api, request, InvalidInput("the body is not UTF-8 JSON", field="body"))
        if not isinstance(body, dict):
            exc = InvalidInput("the body must be a JSON object with inputs", field="body")
            return _bad(api, request, exc)
    return processes_api.execute_process(api, request, process_id)


def _bbox(text: str) -> None:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInput(f"bbox {text!r} is not a list of numbers", field="bbox") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):  # a raster is 2D
        raise InvalidInput("bbox takes 4 finite numbers: minx,miny,maxx,maxy", field="bbox")
    if values[0] > values[2] or values[1] > values[3]:
        raise InvalidInput("bbox: each minimum must not exceed its maximum", field="bbox")


def _bad(api: API, request: APIRequest, exc: InvalidInput) -> Answer:
    headers = request.get_response_headers(**api.api_headers)
    fmt = F_HTML if request.format == F_HTML else F_JSON
    return api.get_exception(
        HTTPStatus.BAD_REQUEST, headers, fmt, "InvalidParameterValue", f"{exc.field}: {exc.detail}"
    )
