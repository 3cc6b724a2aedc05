"""HTTP routes of the dig coordinator (``/api/dig-requests`` and friends).

Every route needs ``Authorization: Bearer TOKEN`` (``geoby users add``);
what each role may see and do is decided in
:mod:`dig_coordination.service`, never here. Errors are problem details.

==========================================  ========================================
route                                       what
==========================================  ========================================
``POST /api/dig-requests``                  file a request; 201 with ``id``, ``status``
``GET /api/dig-requests``                   the requests the caller may see
``GET /api/dig-requests/{id}``              one request, owners' states, links
``GET /api/dig-requests/{id}/answer``       ``?f=geojson|gml|pdf|png`` ``&owner=``
``POST /api/dig-requests/{id}/owner-response``  an owner answers, demands marking
``POST /api/dig-requests/{id}/marking``     an owner books or completes marking
``POST /api/dig-requests/{id}/cancel``      the filer cancels
``POST /api/dig-requests/{id}/renew``       the filer renews (new request)
``POST /api/dig-requests/{id}/damages``     a damage linked to the request
``GET|PUT /api/interest-areas``             an owner's interest areas
``GET|POST /api/precaution-rules``          the rules; owners add their own
``DELETE /api/precaution-rules/{id}``       an owner removes its own rule
``GET /api/audit``                          the audit log (admins)
==========================================  ========================================
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from api.dependencies import PrincipalDep
from dig_coordination import answers, rules
from dig_coordination import interest as interest_areas
from dig_coordination.service import DigService
from dig_coordination.validate import DigRequestIn
from layers.crs import epsg_from_uri
from layers.errors import Forbidden, InvalidInput, NotFound

router = APIRouter(prefix="/api", tags=["dig"])

MEDIA = {
    "geojson": "application/geo+json",
    "gml": "application/gml+xml; version=3.2",
    "pdf": "application/pdf",
    "png": "image/png",
}


def _service(request: Request) -> DigService:
    service = getattr(request.app.state, "dig", None)
    if service is None:
        service = request.app.state.dig = DigService(
            request.app.state.database, request.app.state.settings
        )
    return service


ServiceDep = Annotated[DigService, Depends(_service)]
JsonBody = Annotated[dict[str, Any], Body()]


@router.post("/dig-requests", status_code=201)
def file_request(
    body: DigRequestIn, principal: PrincipalDep, service: ServiceDep, response: Response
) -> dict[str, Any]:
    """File a dig request and get the answer's summary at once."""
    doc = service.file(principal, body)
    response.headers["Location"] = f"/api/dig-requests/{doc['id']}"
    return doc


@router.get("/dig-requests")
def list_requests(
    principal: PrincipalDep,
    service: ServiceDep,
    status: Literal["pending", "answered", "cancelled", "expired"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The dig requests the caller may see, newest first."""
    found = service.list(principal, status=status, limit=limit)
    return {"numberReturned": len(found), "requests": found}


@router.get("/dig-requests/{request_id}")
def get_request(request_id: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    """One dig request with its owners' states and coordination links."""
    return service.get(principal, request_id)


@router.get(
    "/dig-requests/{request_id}/answer",
    responses={200: {"content": {m: {} for m in MEDIA.values()}}},
)
def get_answer(
    request_id: str,
    principal: PrincipalDep,
    service: ServiceDep,
    f: Literal["geojson", "gml", "pdf", "png"] = "geojson",
    owner: str | None = None,
    crs: str | None = None,
) -> Response:
    """The answer: every asset within the area plus buffer, with precautions."""
    epsg = 0
    if crs is not None:
        if f != "geojson":
            raise InvalidInput("crs applies to f=geojson only", field="crs")
        try:
            epsg = epsg_from_uri(crs)
        except Exception as exc:  # noqa: BLE001 - any unreadable CRS is the caller's
            raise InvalidInput(f"crs {crs!r} is not one geoby serves", field="crs") from exc
    answer = service.answer(principal, request_id, owner=owner, fmt=f)
    if (
        owner is not None
        and principal.role == "admin"
        and not any(o.owner == owner for o in answer.owners)
    ):
        raise NotFound(f"{owner} is not concerned by this request")
    name = answer.request.reference + (f"-{owner}" if owner else "")
    headers = {"Content-Disposition": f'inline; filename="{_safe(name)}.{f}"'}
    if f == "geojson":
        doc = answers.to_geojson(answer, epsg=epsg)
        return Response(answers.dumps(doc), media_type=MEDIA[f], headers=headers)
    if f == "gml":
        from dig_coordination.render_gml import render_gml

        return Response(render_gml(answer, owner=owner), media_type=MEDIA[f], headers=headers)
    # matplotlib loads on the first map, not when the app starts
    from dig_coordination.render_map import render_map

    return Response(render_map(answer, fmt=f, owner=owner), media_type=MEDIA[f], headers=headers)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


@router.post("/dig-requests/{request_id}/owner-response")
def owner_response(
    request_id: str, body: JsonBody, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """An owner answers: ``remarks``, ``marking_required``, ``precautions_agreed``."""
    return service.respond(principal, request_id, body)


@router.post("/dig-requests/{request_id}/marking")
def marking(
    request_id: str, body: JsonBody, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """An owner books on-site marking (``booked_for``) or records it ``done``."""
    return service.marking(principal, request_id, body)


@router.post("/dig-requests/{request_id}/cancel")
def cancel(request_id: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    """Cancel a request; owners are told."""
    return service.cancel(principal, request_id)


@router.post("/dig-requests/{request_id}/renew", status_code=201)
def renew(
    request_id: str,
    principal: PrincipalDep,
    service: ServiceDep,
    response: Response,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """File the request again against today's data (optionally a new period)."""
    doc = service.renew(principal, request_id, body or {})
    response.headers["Location"] = f"/api/dig-requests/{doc['id']}"
    return doc


@router.post("/dig-requests/{request_id}/damages", status_code=201)
def report_damage(
    request_id: str, body: JsonBody, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """Report a damage during the works; the owner is told."""
    return service.report_damage(principal, request_id, body)


class GeoJSONResponse(JSONResponse):
    media_type = MEDIA["geojson"]


@router.get("/interest-areas", response_class=GeoJSONResponse)
def get_interest_areas(
    principal: PrincipalDep, service: ServiceDep, owner: str | None = None
) -> GeoJSONResponse:
    """The caller's interest areas (admins: anyone's) as GeoJSON in CRS84."""
    return GeoJSONResponse(interest_areas.list_areas(service.database, principal, owner))


@router.put("/interest-areas")
def put_interest_areas(
    body: JsonBody, principal: PrincipalDep, service: ServiceDep, owner: str | None = None
) -> dict[str, Any]:
    """Replace the caller's interest areas with a FeatureCollection of polygons (CRS84)."""
    return interest_areas.replace_areas(service.database, principal, body, owner)


@router.get("/precaution-rules")
def get_rules(principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    """The default rules and the caller's own (admins, planners: every owner's)."""
    with service.database.connection("admin") as conn:
        everyone = principal.role in ("admin", "planner")
        found = rules.load(conn, None if everyone else [principal.org_name])
    return {"numberReturned": len(found), "rules": [r.as_json() for r in found]}


@router.post("/precaution-rules", status_code=201)
def add_rule(body: JsonBody, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    """An owner adds a rule for its assets; an admin may add a default (``"default": true``)."""
    if principal.role == "utility":
        owner: str | None = principal.org_name
    elif principal.role == "admin":
        owner = None if body.get("default") else body.get("owner")
        if owner is None and not body.get("default"):
            raise InvalidInput("an admin names the owner or sets default: true", field="owner")
    else:
        raise Forbidden("only owners (utilities) and admins add precaution rules")
    with service.database.connection("admin") as conn:
        rule = rules.add(conn, owner, body)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO geoby.audit_log (user_id, org_id, action, object_type, object_id,"
                " detail) VALUES (%s, %s, 'rule.added', 'precaution_rule', %s, '{}')",
                (principal.user_id, principal.org_id, str(rule.id)),
            )
    return rule.as_json()


@router.delete("/precaution-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: int, principal: PrincipalDep, service: ServiceDep) -> Response:
    """Remove a rule: an owner its own, an admin any."""
    if principal.role not in ("utility", "admin"):
        raise Forbidden("only owners (utilities) and admins remove precaution rules")
    with service.database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute(
            "DELETE FROM geoby.precaution_rules WHERE id = %s AND (%s OR owner = %s) RETURNING id",
            (rule_id, principal.is_admin, principal.org_name),
        )
        if cur.fetchone() is None:
            raise NotFound(f"no precaution rule {rule_id} of yours")
        cur.execute(
            "INSERT INTO geoby.audit_log (user_id, org_id, action, object_type, object_id)"
            " VALUES (%s, %s, 'rule.deleted', 'precaution_rule', %s)",
            (principal.user_id, principal.org_id, str(rule_id)),
        )
    return Response(status_code=204)


@router.get("/audit")
def get_audit(
    principal: PrincipalDep,
    service: ServiceDep,
    object_id: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """The audit log, newest first (admins only)."""
    found = service.audit_log(principal, object_id=object_id, action=action, limit=limit)
    return {"numberReturned": len(found), "entries": found}
