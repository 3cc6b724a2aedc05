"""The dig coordinator: filing, answering, owners' responses, coordination, lifecycle.

Every operation takes the :class:`~dig_coordination.users.Principal` asking
and runs in one transaction of the admin role: a refused or failed operation
changes nothing, and notifications are written to the outbox in the same
transaction as the change they announce (delivered by
:mod:`dig_coordination.notify`).

Filing a request (:meth:`DigService.file`):

1. the body is checked (:mod:`dig_coordination.validate`) and the dig area
   must lie in the service area (a configured boundary, or by default within
   ``service_area_margin_m`` of a network geoby holds);
2. the conflicts are found in PostGIS (:mod:`dig_coordination.conflicts`),
   the precaution rules applied (:mod:`dig_coordination.rules`) and the
   answer stored as a snapshot;
3. each owner concerned gets a response row: owners whose data geoby holds
   are answered at once (``automatic``); organisations registered as
   answering manually get ``pending`` with a deadline on the working-day
   calendar (LER's 2-hour / next 09:00 rule) and a notification;
4. live requests of other organisations within ``coordination_distance_m``
   whose periods overlap are linked and both organisations told;
5. the filing is written to the audit log.

Access (who sees what):

==========  =====================================  ==================================
role        requests                               asset detail (answers)
==========  =====================================  ==================================
contractor  its organisation's                     its organisation's, while valid
utility     those touching its interest areas      its own assets only
planner     all (no asset detail)                  none
admin       all                                    all
==========  =====================================  ==================================

A request a caller may not see is "not found" (its existence is not
disclosed). Every disclosure of asset detail is audited with the counts per
owner, the format and the caller.

Decisions: an answer is valid for ``answer_valid_working_days`` working days
from filing (KLIC's 20), to the end of that day; after that it is
``expired`` and must be renewed (a new request against today's data). A
cancelled request keeps its record (damage reports can still refer to it)
but no longer discloses anything to the contractor.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import shapely
from psycopg2.extensions import connection as Connection
from psycopg2.extras import Json, execute_values
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from dig_coordination import answers, conflicts, notify, rules
from dig_coordination.model import Answer, DigRequest
from dig_coordination.users import Principal
from dig_coordination.validate import DigRequestIn, ValidRequest, check
from dig_coordination.workdays import WorkingCalendar
from layers.crs import STORAGE_EPSG, reproject
from layers.database import Database
from layers.errors import Forbidden, GeobyError, InvalidInput, NotFound
from layers.settings import Settings

log = logging.getLogger(__name__)

FILERS = ("contractor", "planner", "admin")


class Gone(GeobyError):
    """The answer exists but may no longer be disclosed (expired or cancelled)."""

    status = 410
    title = "Gone"
    code = "gone"


def audit(
    cur: Any,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log in the caller's transaction."""
    cur.execute(
        "INSERT INTO geoby.audit_log (user_id, org_id, action, object_type, object_id, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            principal.user_id if principal else None,
            principal.org_id if principal else None,
            action,
            object_type,
            object_id,
            Json(detail or {}, dumps=lambda d: json.dumps(d, default=str)),
        ),
    )


@dataclass
class DigService:
    """The coordinator over one database."""

    database: Database
    settings: Settings

    @cached_property
    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(self.settings.dig)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.dig.timezone)

    @cached_property
    def service_area(self) -> BaseGeometry | None:
        """The configured boundary in EPSG:25832, or None (the networks' surroundings)."""
        path = self.settings.dig.service_area
        return _read_boundary(path) if path else None

    # -- filing ---------------------------------------------------------------------------

    def file(
        self,
        principal: Principal,
        body: DigRequestIn,
        *,
        now: datetime | None = None,
        renewed_from: str | None = None,
    ) -> dict[str, Any]:
        """File a request and answer it; returns the request as the filer sees it."""
        if principal.role not in FILERS:
            raise Forbidden(f"a {principal.role} cannot file dig requests")
        if principal.role == "planner" and body.kind != "planning":
            raise Forbidden("planners file planning requests (kind 'planning') only")
        now = now or datetime.now(UTC)
        today = now.astimezone(self.zone).date()
        valid = check(body, self.settings.dig, self.calendar, today)
        with self.database.connection("admin") as conn:
            self.check_service_area(conn, valid.area)
            request_id = self._store(conn, principal, valid, now, today, renewed_from)
            return self._summary(conn, principal, answers.load_request(conn, request_id), now)

    def check_service_area(self, conn: Connection, area: BaseGeometry) -> None:
        limits = self.settings.dig
        if self.service_area is not None:
            if not self.service_area.covers(area):
                outside = next(
                    (p for p in shapely.get_coordinates(area)
                     if not self.service_area.covers(shapely.Point(p))),
                    None,
                )  # fmt: skip
                where = f" (e.g. E {outside[0]:.1f}, N {outside[1]:.1f} in EPSG:25832)" \
                    if outside is not None else ""  # fmt: skip
                raise InvalidInput(
                    f"the dig area lies outside the service area{where}", field="geometry"
                )
            return
        if not conflicts.near_networks(conn, area, limits.service_area_margin_m):
            raise InvalidInput(
                "the dig area lies outside the service area: no network geoby holds is within "
                f"{limits.service_area_margin_m:,.0f} m of it (check the coordinates and 'crs')",
                field="geometry",
            )

    def _store(
        self,
        conn: Connection,
        principal: Principal,
        valid: ValidRequest,
        now: datetime,
        today: date,
        renewed_from: str | None,
    ) -> str:
        limits = self.settings.dig
        last_day = self.calendar.add_working_days(today, limits.answer_valid_working_days)
        valid_until = datetime.combine(last_day + timedelta(days=1), time(0), self.zone)
        with conn.cursor() as cur:
            cur.execute("SELECT nextval('geoby.dig_request_number')")
            number = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO geoby.dig_requests (number, reference, org_id, user_id, kind, status,"
                " geom, input_geom, line_width_m, start_date, end_date, work_types, depth_m,"
                " description, contact, buffer_m, created_at, valid_until, renewed_from)"
                " VALUES (%(number)s, %(reference)s, %(org)s, %(user)s,"
                " %(kind)s, 'pending', ST_GeomFromWKB(%(area)s, 25832),"
                " ST_GeomFromWKB(%(drawn)s, 25832), %(width)s, %(start)s, %(end)s, %(work)s,"
                " %(depth)s, %(description)s, %(contact)s, %(buffer)s, %(now)s, %(valid)s,"
                " %(renewed)s) RETURNING id::text, reference",
                {
                    "number": number,
                    "reference": f"DR-{today.year}-{number:06d}",
                    "now": now,
                    "org": principal.org_id,
                    "user": principal.user_id,
                    "kind": valid.kind,
                    "area": shapely.to_wkb(valid.area),
                    "drawn": shapely.to_wkb(shapely.force_2d(valid.drawn)),
                    "width": valid.line_width_m,
                    "start": valid.start_date,
                    "end": valid.end_date,
                    "work": valid.work_types,
                    "depth": valid.depth_m,
                    "description": valid.description,
                    "contact": Json(valid.contact),
                    "buffer": limits.answer_buffer_m,
                    "valid": valid_until,
                    "renewed": renewed_from,
                },  # fmt: skip
            )
            request_id, reference = cur.fetchone()
        found = conflicts.find(conn, valid.area, limits.answer_buffer_m)
        owners = sorted({row["owner"] for row in found} | conflicts.interested_owners(
            conn, valid.area))  # fmt: skip
        applicable = rules.load(conn, owners)
        with conn.cursor() as cur:
            rows = []
            for asset in found:
                actions = rules.apply(applicable, asset, valid.work_types, asset["distance_m"])
                rows.append((
                    request_id, asset["layer"], asset["fid"], asset["asset_id"], asset["owner"],
                    asset["utility_type"], asset["subtype"], asset["asset_kind"],
                    asset["hazard_class"], asset["status"], asset["depth_m"],
                    asset["depth_reference"], asset["accuracy_class"], asset["diameter_mm"],
                    asset["voltage_kv"], asset["pressure_bar"], asset["distance_m"],
                    Json([a.as_json() for a in actions]), any(a.blocks for a in actions),
                    shapely.to_wkb(asset["geometry"]),
                ))  # fmt: skip
            if rows:
                execute_values(
                    cur,
                    "INSERT INTO restricted.dig_conflicts (request_id, layer, asset_fid, asset_id,"
                    " owner, utility_type, subtype, asset_kind, hazard_class, status, depth_m,"
                    " depth_reference, accuracy_class, diameter_mm, voltage_kv, pressure_bar,"
                    " distance_m, required_actions, blocks, geom) VALUES %s",
                    rows,
                    template="(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, ST_GeomFromWKB(%s, 25832))",
                    page_size=1000,
                )
            counts: dict[str, int] = {}
            for asset in found:
                counts[asset["owner"]] = counts.get(asset["owner"], 0) + 1
            pending = self._owner_rows(cur, request_id, reference, valid, owners, counts, now)
            status = "pending" if pending else "answered"
            cur.execute(
                "UPDATE geoby.dig_requests SET status = %s, answered_at = %s WHERE id = %s",
                (status, None if pending else now, request_id),
            )
            payload = {"request_id": request_id, "reference": reference, "kind": valid.kind,
                       "start_date": valid.start_date, "end_date": valid.end_date,
                       "assets": len(found), "owners": len(owners)}  # fmt: skip
            if not pending:
                notify.notify_org(cur, principal.org_id, "dig_request.answered",
                                  payload, f"{request_id}:answered")  # fmt: skip
            links = self._link(cur, request_id, reference, principal, valid)
            audit(cur, principal, "dig_request.filed", "dig_request", request_id,
                  {"reference": reference, "kind": valid.kind, "assets": len(found),
                   "owners": counts, "pending_owners": pending, "links": links,
                   "renewed_from": renewed_from})  # fmt: skip
        return request_id

    def _owner_rows(
        self,
        cur: Any,
        request_id: str,
        reference: str,
        valid: ValidRequest,
        owners: list[str],
        counts: dict[str, int],
        now: datetime,
    ) -> list[str]:
        """One response row per owner; returns the owners who must still answer."""
        cur.execute(
            "SELECT name, id, answers_manually FROM geoby.organisations WHERE name = ANY(%s)",
            (owners,),
        )
        orgs = {name: (org_id, manual) for name, org_id, manual in cur.fetchall()}
        due = self.calendar.answer_due(now)
        pending = []
        for owner in owners:
            org_id, manual = orgs.get(owner, (None, False))
            cur.execute(
                "INSERT INTO geoby.dig_owner_responses (request_id, owner, mode, status,"
                " asset_count, notified_at, due_at, answered_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    request_id,
                    owner,
                    "manual" if manual else "automatic",
                    "pending" if manual else "answered",
                    counts.get(owner, 0),
                    now if org_id else None,
                    due if manual else None,
                    None if manual else now,
                ),  # fmt: skip
            )
            if manual:
                pending.append(owner)
            if org_id is None:
                continue
            event = "dig_request.emergency" if valid.kind == "emergency" else \
                "dig_request.received"  # fmt: skip
            notify.notify_org(
                cur, org_id, event,
                {"request_id": request_id, "reference": reference, "kind": valid.kind,
                 "start_date": valid.start_date, "end_date": valid.end_date,
                 "work_types": valid.work_types, "answer": "manual" if manual else "automatic",
                 "due_at": due if manual else None, "your_assets": counts.get(owner, 0),
                 "area_wkt": shapely.to_wkt(valid.area, rounding_precision=2)},
                f"{request_id}:received:{quote(owner)}",
            )  # fmt: skip
        return pending

    def _link(
        self, cur: Any, request_id: str, reference: str, principal: Principal, valid: ValidRequest
    ) -> list[str]:
        """Link live requests of other organisations near in space and time; tell both."""
        cur.execute(
            "SELECT o.id::text, o.reference, o.org_id, ST_Distance(o.geom, n.geom),"
            " greatest(o.start_date, n.start_date), least(o.end_date, n.end_date)"
            " FROM geoby.dig_requests n JOIN geoby.dig_requests o"
            "   ON ST_DWithin(o.geom, n.geom, %s) AND o.id <> n.id"
            "  AND o.start_date <= n.end_date AND n.start_date <= o.end_date"
            " WHERE n.id = %s AND o.status <> 'cancelled' AND o.org_id <> n.org_id"
            " AND o.valid_until > now()",
            (self.settings.dig.coordination_distance_m, request_id),
        )
        linked = []
        for other_id, other_ref, other_org, distance, start, end in cur.fetchall():
            a, b = sorted((request_id, other_id))
            cur.execute(
                "INSERT INTO geoby.dig_links (request_a, request_b, distance_m, overlap_start,"
                " overlap_end) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (a, b, distance, start, end),
            )
            payload = {"overlap_start": start, "overlap_end": end, "distance_m": round(distance, 1)}
            notify.notify_org(cur, principal.org_id, "dig_request.coordination",
                              payload | {"request_id": request_id, "reference": reference,
                                         "other_reference": other_ref},
                              f"{a}:{b}:coordination:{principal.org_id}")  # fmt: skip
            notify.notify_org(cur, other_org, "dig_request.coordination",
                              payload | {"request_id": other_id, "reference": other_ref,
                                         "other_reference": reference},
                              f"{a}:{b}:coordination:{other_org}")  # fmt: skip
            linked.append(other_ref)
        return linked

    # -- reading --------------------------------------------------------------------------

    def _visible(self, conn: Connection, principal: Principal, request: DigRequest) -> bool:
        if principal.role in ("admin", "planner"):
            return True
        if principal.role == "contractor":
            return request.org_id == principal.org_id
        if principal.role == "utility":
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT EXISTS (SELECT FROM geoby.dig_owner_responses"
                    " WHERE request_id = %s AND owner = %s)",
                    (request.id, principal.org_name),
                )
                return cur.fetchone()[0]
        return False

    def _get(self, conn: Connection, principal: Principal, request_id: str) -> DigRequest:
        try:
            request = answers.load_request(conn, request_id)
        except NotFound:
            raise NotFound(f"no dig request {request_id}") from None
        if not self._visible(conn, principal, request):
            raise NotFound(f"no dig request {request_id}")
        return request

    def _summary(
        self, conn: Connection, principal: Principal, request: DigRequest, now: datetime
    ) -> dict[str, Any]:
        owners = answers.load_owners(conn, request.id, now)
        own_only = principal.role == "utility"
        shown = [o for o in owners if o.owner == principal.org_name] if own_only else owners
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), count(*) FILTER (WHERE blocks) FROM restricted.dig_conflicts"
                " WHERE request_id = %s AND (%s::text IS NULL OR owner = %s)",
                (
                    request.id,
                    principal.org_name if own_only else None,
                    principal.org_name if own_only else None,
                ),  # fmt: skip
            )
            n_assets, n_blocking = cur.fetchone()
        # ready_to_dig needs the precautions, not the shapes
        disclosed = principal.role in ("contractor", "admin")
        found = answers.load_conflicts(conn, request.id, geometry=False) if disclosed else []
        answer = Answer(request, found, owners)
        expired = request.status != "cancelled" and request.valid_until <= now
        base = f"/api/dig-requests/{request.id}"
        doc = {
            "id": request.id,
            "reference": request.reference,
            "status": "expired" if expired else request.status,
            "kind": request.kind,
            "organisation": request.organisation,
            "start_date": request.start_date.isoformat(),
            "end_date": request.end_date.isoformat(),
            "work_types": request.work_types,
            "depth_m": request.depth_m,
            "line_width_m": request.line_width_m,
            "description": request.description,
            "contact": request.contact,
            "created_at": request.created_at.isoformat(),
            "answered_at": request.answered_at.isoformat() if request.answered_at else None,
            "valid_until": request.valid_until.isoformat(),
            "cancelled_at": request.cancelled_at.isoformat() if request.cancelled_at else None,
            "renewed_from": request.renewed_from,
            "area_m2": round(request.geometry.area, 1),
            "geometry": mapping(
                shapely.set_precision(reproject(request.geometry, STORAGE_EPSG, 0), 1e-7)
            ),  # fmt: skip
            "owners": [o.as_json() for o in shown],
            "asset_count": n_assets,
            "blocking_asset_count": n_blocking,
            "coordination": answers.load_links(conn, request.id),
        }
        if principal.role in ("contractor", "admin"):
            doc["ready_to_dig"] = answer.ready_to_dig and not expired
        if principal.role != "planner":
            doc["links"] = [
                {"rel": "answer", "type": t, "href": f"{base}/answer?f={f}"}
                for f, t in (
                    ("geojson", "application/geo+json"),
                    ("gml", "application/gml+xml"),
                    ("pdf", "application/pdf"),
                    ("png", "image/png"),
                )  # fmt: skip
            ]
        return doc

    def get(self, principal: Principal, request_id: str) -> dict[str, Any]:
        """One request as ``principal`` may see it."""
        now = datetime.now(UTC)
        with self.database.connection("admin") as conn:
            return self._summary(conn, principal, self._get(conn, principal, request_id), now)

    def list(
        self, principal: Principal, *, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The requests ``principal`` may see, newest first."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        where = {
            "contractor": "r.org_id = %(org)s",
            "utility": "EXISTS (SELECT FROM geoby.dig_owner_responses x"
            " WHERE x.request_id = r.id AND x.owner = %(owner)s)",
        }.get(principal.role, "TRUE")
        if status is not None:
            if status not in ("pending", "answered", "cancelled", "expired"):
                raise InvalidInput("status is pending, answered, cancelled or expired",
                                   field="status")  # fmt: skip
            where += (
                " AND r.status <> 'cancelled' AND r.valid_until <= now()"
                if status == "expired"
                else " AND r.status = %(status)s AND (r.status = 'cancelled'"
                " OR r.valid_until > now())"
            )
        now = datetime.now(UTC)
        with self.database.connection("admin") as conn:
            found = answers.load_requests(
                conn, where, {"org": principal.org_id, "owner": principal.org_name,
                              "status": status}, limit)  # fmt: skip
            return [self._summary(conn, principal, r, now) for r in found]

    def answer(
        self, principal: Principal, request_id: str, *, owner: str | None = None, fmt: str
    ) -> Answer:
        """The answer with asset detail, checked and audited; per owner when ``owner`` is set."""
        now = datetime.now(UTC)
        with self.database.connection("admin") as conn:
            request = self._get(conn, principal, request_id)
            if principal.role == "planner":
                raise Forbidden("planners see dig requests, not the assets in their answers")
            if principal.role == "utility":
                if owner not in (None, principal.org_name):
                    raise Forbidden("a utility sees its own assets only")
                owner = principal.org_name
            if principal.role == "contractor":
                if request.status == "cancelled":
                    raise Gone(f"dig request {request.reference} was cancelled")
                if request.valid_until <= now:
                    raise Gone(
                        f"the answer to {request.reference} expired at "
                        f"{request.valid_until.isoformat()}; renew the request"
                    )
            answer = answers.load_answer(conn, request_id, owner)
            per_owner: dict[str, int] = {}
            for c in answer.conflicts:
                per_owner[c.owner] = per_owner.get(c.owner, 0) + 1
            with conn.cursor() as cur:
                audit(cur, principal, "answer.disclosed", "dig_request", request_id,
                      {"reference": request.reference, "format": fmt, "owner": owner,
                       "assets": len(answer.conflicts), "per_owner": per_owner})  # fmt: skip
            return answer

    # -- owners ---------------------------------------------------------------------------

    def _owner_target(self, principal: Principal, owner: str | None) -> str:
        if principal.role == "admin":
            if not owner:
                raise InvalidInput("an admin must name the owner", field="owner")
            return owner
        if principal.role != "utility":
            raise Forbidden("only the owner (a utility) or an admin can do this")
        if owner not in (None, principal.org_name):
            raise Forbidden("a utility acts for itself only")
        return principal.org_name

    def respond(self, principal: Principal, request_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        """An owner answers: remarks, on-site marking demanded, precautions agreed."""
        owner = self._owner_target(principal, doc.get("owner"))
        now = datetime.now(UTC)
        unknown = set(doc) - {"owner", "remarks", "marking_required", "precautions_agreed"}
        if unknown:
            raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}",
                               field=sorted(unknown)[0])  # fmt: skip
        remarks = doc.get("remarks")
        if remarks is not None and (not isinstance(remarks, str) or len(remarks) > 4000):
            raise InvalidInput("remarks is text of at most 4,000 characters", field="remarks")
        for flag in ("marking_required", "precautions_agreed"):
            if flag in doc and not isinstance(doc[flag], bool):
                raise InvalidInput(f"{flag} is true or false", field=flag)
        with self.database.connection("admin") as conn:
            request = self._get(conn, principal, request_id)
            if request.status == "cancelled":
                raise InvalidInput(f"dig request {request.reference} was cancelled")
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE geoby.dig_owner_responses SET status = 'answered',"
                    " answered_at = coalesce(answered_at, %(now)s),"
                    " remarks = coalesce(%(remarks)s, remarks),"
                    " marking_required = coalesce(%(marking)s, marking_required),"
                    " precautions_agreed_at = CASE WHEN %(agreed)s THEN %(now)s"
                    "   WHEN %(agreed)s = false THEN NULL ELSE precautions_agreed_at END"
                    " WHERE request_id = %(id)s AND owner = %(owner)s RETURNING owner",
                    {
                        "now": now,
                        "remarks": remarks,
                        "marking": doc.get("marking_required"),
                        "agreed": doc.get("precautions_agreed"),
                        "id": request_id,
                        "owner": owner,
                    },  # fmt: skip
                )
                if cur.fetchone() is None:
                    raise NotFound(f"{owner} is not concerned by dig request {request.reference}")
                cur.execute(
                    "UPDATE geoby.dig_requests SET status = 'answered', answered_at = %s"
                    " WHERE id = %s AND status = 'pending' AND NOT EXISTS (SELECT FROM"
                    " geoby.dig_owner_responses WHERE request_id = %s AND status = 'pending')"
                    " RETURNING id",
                    (now, request_id, request_id),
                )
                completed = cur.fetchone() is not None
                payload = {"request_id": request_id, "reference": request.reference,
                           "owner": owner, "remarks": remarks,
                           "marking_required": doc.get("marking_required")}  # fmt: skip
                notify.notify_org(
                    cur,
                    request.org_id,
                    "dig_request.owner_answered",
                    payload,
                    f"{request_id}:owner_answered:{quote(owner)}:{now.isoformat()}",
                )
                if completed:
                    notify.notify_org(cur, request.org_id, "dig_request.answered", payload,
                                      f"{request_id}:answered")  # fmt: skip
                audit(
                    cur,
                    principal,
                    "dig_request.owner_answered",
                    "dig_request",
                    request_id,
                    {"owner": owner} | {k: v for k, v in doc.items() if k != "owner"},
                )
            return self._summary(conn, principal, answers.load_request(conn, request_id), now)

    def marking(self, principal: Principal, request_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        """The owner books on-site marking (``booked_for``) or records it done (``done``)."""
        owner = self._owner_target(principal, doc.get("owner"))
        now = datetime.now(UTC)
        booked = doc.get("booked_for")
        done = doc.get("done", False)
        if booked is None and not done:
            raise InvalidInput("give booked_for (date and time) or done: true", field="booked_for")
        when = None
        if booked is not None:
            try:
                when = datetime.fromisoformat(str(booked))
            except ValueError as exc:
                raise InvalidInput(f"booked_for {booked!r} is not an ISO date-time",
                                   field="booked_for") from exc  # fmt: skip
            if when.tzinfo is None:
                when = when.replace(tzinfo=self.zone)
        with self.database.connection("admin") as conn:
            request = self._get(conn, principal, request_id)
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE geoby.dig_owner_responses SET marking_required = true,"
                    " marking_booked_for = coalesce(%s, marking_booked_for),"
                    " marking_done_at = CASE WHEN %s THEN %s ELSE marking_done_at END"
                    " WHERE request_id = %s AND owner = %s RETURNING owner",
                    (when, bool(done), now, request_id, owner),
                )
                if cur.fetchone() is None:
                    raise NotFound(f"{owner} is not concerned by dig request {request.reference}")
                event = "dig_request.marking_done" if done else "dig_request.marking_booked"
                notify.notify_org(cur, request.org_id, event,
                                  {"request_id": request_id, "reference": request.reference,
                                   "owner": owner, "booked_for": when, "done": bool(done)},
                                  f"{request_id}:{event}:{quote(owner)}:{(when or now).isoformat()}")  # fmt: skip
                audit(cur, principal, event, "dig_request", request_id,
                      {"owner": owner, "booked_for": when, "done": bool(done)})  # fmt: skip
            return self._summary(conn, principal, answers.load_request(conn, request_id), now)

    # -- lifecycle ------------------------------------------------------------------------

    def _own(self, conn: Connection, principal: Principal, request_id: str) -> DigRequest:
        request = self._get(conn, principal, request_id)
        if principal.role != "admin" and request.org_id != principal.org_id:
            raise Forbidden("only the organisation that filed the request (or an admin) can")
        return request

    def cancel(self, principal: Principal, request_id: str) -> dict[str, Any]:
        """Cancel a request; the owners concerned are told."""
        now = datetime.now(UTC)
        with self.database.connection("admin") as conn:
            request = self._own(conn, principal, request_id)
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE geoby.dig_requests SET status = 'cancelled', cancelled_at = %s"
                    " WHERE id = %s AND status <> 'cancelled' RETURNING id",
                    (now, request_id),
                )
                if cur.fetchone() is None:
                    raise InvalidInput(f"dig request {request.reference} is already cancelled")
                cur.execute(
                    "SELECT o.id FROM geoby.dig_owner_responses r"
                    " JOIN geoby.organisations o ON o.name = r.owner WHERE r.request_id = %s",
                    (request_id,),
                )
                for (org_id,) in cur.fetchall():
                    notify.notify_org(cur, org_id, "dig_request.cancelled",
                                      {"request_id": request_id, "reference": request.reference},
                                      f"{request_id}:cancelled:{org_id}")  # fmt: skip
                audit(cur, principal, "dig_request.cancelled", "dig_request", request_id,
                      {"reference": request.reference})  # fmt: skip
            return self._summary(conn, principal, answers.load_request(conn, request_id), now)

    def renew(self, principal: Principal, request_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        """File the request again against today's data, optionally with a new period."""
        with self.database.connection("admin") as conn:
            request = self._own(conn, principal, request_id)
            if request.status == "cancelled":
                raise InvalidInput(f"dig request {request.reference} was cancelled; file anew")
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT ST_AsBinary(input_geom) FROM geoby.dig_requests WHERE id = %s",
                    (request_id,),
                )
                drawn = shapely.from_wkb(bytes(cur.fetchone()[0]))
        unknown = set(doc) - {"start_date", "end_date"}
        if unknown:
            raise InvalidInput(f"a renewal takes start_date and end_date only; not "
                               f"{', '.join(sorted(unknown))}", field=sorted(unknown)[0])  # fmt: skip
        body = DigRequestIn(
            geometry=mapping(drawn),
            crs=f"http://www.opengis.net/def/crs/EPSG/0/{STORAGE_EPSG}",
            line_width_m=request.line_width_m,
            kind=request.kind,
            start_date=doc.get("start_date", request.start_date),
            end_date=doc.get("end_date", request.end_date),
            work_types=request.work_types,
            depth_m=request.depth_m,
            description=request.description,
            contact=request.contact,
        )
        return self.file(principal, body, renewed_from=request_id)

    def report_damage(
        self, principal: Principal, request_id: str, doc: dict[str, Any]
    ) -> dict[str, Any]:
        """A damage during the works, linked to the request; the owner is told."""
        if principal.role not in ("contractor", "utility", "admin"):
            raise Forbidden(f"a {principal.role} cannot report damage")
        description = str(doc.get("description") or "").strip()
        if not description:
            raise InvalidInput("describe the damage", field="description")
        try:
            occurred = datetime.fromisoformat(str(doc.get("occurred_at")))
        except ValueError as exc:
            raise InvalidInput("occurred_at must be an ISO date-time", field="occurred_at") from exc
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=self.zone)
        point = None
        if doc.get("geometry") is not None:
            try:
                point = shape(doc["geometry"])
            except Exception as exc:  # noqa: BLE001 - any unreadable geometry is input error
                raise InvalidInput("geometry must be a GeoJSON Point (lon/lat)",
                                   field="geometry") from exc  # fmt: skip
            if point.geom_type != "Point" or not (-180 <= point.x <= 180 and -90 <= point.y <= 90):
                raise InvalidInput("geometry must be a GeoJSON Point in lon/lat", field="geometry")
            point = reproject(point, 0, STORAGE_EPSG)
        with self.database.connection("admin") as conn:
            request = self._get(conn, principal, request_id)
            if principal.role == "contractor" and request.org_id != principal.org_id:
                raise NotFound(f"no dig request {request_id}")
            owner = doc.get("owner") or (
                principal.org_name if principal.role == "utility" else None
            )
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO geoby.damage_reports (request_id, user_id, owner, utility_type,"
                    " occurred_at, description, geom) VALUES (%s, %s, %s, %s, %s, %s,"
                    " ST_GeomFromWKB(%s, 25832)) RETURNING id, created_at",
                    (request_id, principal.user_id, owner, doc.get("utility_type"), occurred,
                     description, shapely.to_wkb(point) if point is not None else None),
                )  # fmt: skip
                damage_id, created = cur.fetchone()
                cur.execute("SELECT id FROM geoby.organisations WHERE name = %s", (owner,))
                org = cur.fetchone()
                payload = {"request_id": request_id, "reference": request.reference,
                           "damage_id": damage_id, "owner": owner, "occurred_at": occurred,
                           "description": description}  # fmt: skip
                if org:
                    notify.notify_org(cur, org[0], "dig_request.damage_reported", payload,
                                      f"damage:{damage_id}:{org[0]}")  # fmt: skip
                audit(cur, principal, "damage.reported", "dig_request", request_id, payload)
        return {"id": damage_id, "request_id": request_id, "reference": request.reference,
                "owner": owner, "utility_type": doc.get("utility_type"),
                "occurred_at": occurred.isoformat(), "description": description,
                "created_at": created.isoformat()}  # fmt: skip

    # -- audit ----------------------------------------------------------------------------

    def audit_log(
        self,
        principal: Principal,
        *,
        object_id: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The audit log, newest first (admins only)."""
        if not principal.is_admin:
            raise Forbidden("only admins read the audit log")
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000", field="limit")
        with self.database.connection("admin") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT a.id, a.at, u.name, o.name, a.action, a.object_type, a.object_id,"
                " a.detail FROM geoby.audit_log a LEFT JOIN geoby.users u ON u.id = a.user_id"
                " LEFT JOIN geoby.organisations o ON o.id = a.org_id"
                " WHERE (%(oid)s::text IS NULL OR a.object_id = %(oid)s)"
                " AND (%(action)s::text IS NULL OR a.action = %(action)s)"
                " ORDER BY a.id DESC LIMIT %(limit)s",
                {"oid": object_id, "action": action, "limit": limit},
            )
            keys = ("id", "at", "user", "organisation", "action", "object_type", "object_id",
                    "detail")  # fmt: skip
            return [dict(zip(keys, row, strict=True)) | {"at": row[1].isoformat()}
                    for row in cur.fetchall()]  # fmt: skip


def _read_boundary(path: Path) -> BaseGeometry:
    """A GeoJSON boundary (geometry, Feature or FeatureCollection; CRS84) in EPSG:25832."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"service area {path}: {exc}", field="GEOBY_DIG_SERVICE_AREA") from exc
    if doc.get("type") == "FeatureCollection":
        geoms = [shape(f["geometry"]) for f in doc.get("features", [])]
    elif doc.get("type") == "Feature":
        geoms = [shape(doc["geometry"])]
    else:
        geoms = [shape(doc)]
    if not geoms:
        raise InvalidInput(f"service area {path} holds no geometry", field="GEOBY_DIG_SERVICE_AREA")
    merged = shapely.union_all(geoms)
    return shapely.make_valid(reproject(merged, 0, STORAGE_EPSG))
