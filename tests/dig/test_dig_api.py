"""The dig coordinator over HTTP on the sample town: filing, answers, validation, lifecycle."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import shapely
from shapely.geometry import box, mapping, shape

from layers.crs import reproject
from tests.dig.conftest import bearer

EPSG_25832 = "http://www.opengis.net/def/crs/EPSG/0/25832"
CONTRACT_KEYS = {"owner", "utility_type", "hazard_class", "distance_m", "depth_m",
                 "accuracy_class", "required_actions"}  # fmt: skip


def _lonlat(geom):
    return reproject(geom, 25832, 0)


# A 100 x 100 m block in the town centre with cables and pipes of six owners.
CENTRE = box(722_125, 6_172_113, 722_225, 6_172_213)


def _body(geom=CENTRE, **fields) -> dict:
    start = date.today() + timedelta(days=1)
    body = {
        "geometry": mapping(_lonlat(geom)),
        "kind": "normal",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=10)).isoformat(),
        "work_types": ["machine_excavation"],
        "depth_m": 1.2,
        "description": "New service connection",
        "contact": {"name": "Site lead", "phone": "+45 12 34 56 78"},
    }
    body.update(fields)
    return body


@pytest.fixture(scope="module")
def contractor(make_user):
    return make_user("Graveholdet ApS", "contractor")


@pytest.fixture(scope="module")
def filed(client, contractor):
    response = client.post("/api/dig-requests", json=_body(), headers=bearer(contractor[1]))
    assert response.status_code == 201, response.text
    return response.json()


def _count(owner_conn, table: str) -> int:
    with owner_conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed test table names
        return cur.fetchone()[0]


def test_filing_answers_at_once_from_the_data(client, contractor, filed):
    assert filed["status"] == "answered"
    assert filed["reference"].startswith(f"DR-{date.today().year}-")
    assert filed["asset_count"] > 10
    owners = {o["owner"]: o for o in filed["owners"]}
    assert len(owners) >= 4
    assert all(o["mode"] == "automatic" and o["status"] == "answered" for o in owners.values())
    got = client.get(f"/api/dig-requests/{filed['id']}", headers=bearer(contractor[1]))
    assert got.status_code == 200 and got.json()["id"] == filed["id"]


def test_geojson_answer_has_one_feature_per_asset_with_the_contract(client, contractor, filed):
    response = client.get(
        f"/api/dig-requests/{filed['id']}/answer?f=geojson", headers=bearer(contractor[1])
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    doc = response.json()
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == filed["asset_count"]
    zone = _lonlat(CENTRE.buffer(5.0 + 0.06))
    for feature in doc["features"]:
        props = feature["properties"]
        assert CONTRACT_KEYS <= set(props)
        assert 0 <= props["distance_m"] <= 5.0
        assert zone.covers(shape(feature["geometry"])), "asset detail outside area + buffer"
        if props["depth_m"] is None:
            assert props["depth_text"] == "depth unknown" and props["depth_known"] is False
        for action in props["required_actions"]:
            assert {"action", "text", "blocks"} <= set(action)
    kinds = {f["properties"]["utility_type"] for f in doc["features"]}
    assert {"telecom", "sewer"} <= kinds
    # Machines within 1 m of an asset (less its accuracy) must dig by hand there.
    near = [f for f in doc["features"] if f["properties"]["least_distance_m"] < 1.0]
    assert near and all(
        "hand_dig" in {a["action"] for a in f["properties"]["required_actions"]} for f in near
    )


def test_gml_pdf_and_png_answers(client, contractor, filed):
    base = f"/api/dig-requests/{filed['id']}/answer"
    gml = client.get(base + "?f=gml", headers=bearer(contractor[1]))
    assert gml.status_code == 200 and gml.headers["content-type"].startswith("application/gml")
    assert b"http://data.gov.dk/schemas/LER/2/gml" in gml.content
    pdf = client.get(base + "?f=pdf", headers=bearer(contractor[1]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    owner = filed["owners"][0]["owner"]
    png = client.get(base, params={"f": "png", "owner": owner}, headers=bearer(contractor[1]))
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    one = client.get(base, params={"owner": owner}, headers=bearer(contractor[1])).json()
    assert one["features"] and {f["properties"]["owner"] for f in one["features"]} == {owner}


def test_every_disclosure_is_audited(client, contractor, filed, make_user):
    _, admin = make_user("Egevig Kommune IT", "admin")
    client.get(f"/api/dig-requests/{filed['id']}/answer", headers=bearer(contractor[1]))
    log = client.get("/api/audit", params={"object_id": filed["id"]}, headers=bearer(admin))
    assert log.status_code == 200
    actions = [e["action"] for e in log.json()["entries"]]
    assert "dig_request.filed" in actions and "answer.disclosed" in actions
    disclosed = [e for e in log.json()["entries"] if e["action"] == "answer.disclosed"]
    assert all(e["organisation"] == "Graveholdet ApS" for e in disclosed)
    assert {e["detail"]["format"] for e in disclosed} >= {"geojson", "gml", "pdf", "png"}
    denied = client.get("/api/audit", headers=bearer(contractor[1]))
    assert denied.status_code == 403


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[12.53, 55.644], [12.531, 55.644], [12.531, 55.645], [12.53, 55.644]]],
                        [[[12.54, 55.644], [12.541, 55.644], [12.541, 55.645], [12.54, 55.644]]],
                    ],
                }
            },
            "geometry",
            "one polygon",
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [12.530, 55.644],
                            [12.532, 55.645],
                            [12.532, 55.644],
                            [12.530, 55.645],
                            [12.530, 55.644],
                        ]
                    ],
                }
            },
            "geometry",
            "Self-intersection",
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[12.53, 55.644], [12.531, 55.644], [12.531, 55.645]]],
                }
            },
            "geometry",
            "needs at least 4",
        ),
        (
            {"geometry": {"type": "Point", "coordinates": [12.53, 55.644]}},
            "geometry.type",
            "Polygon, or a LineString",
        ),
        (
            {
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[12.53, 55.644], [12.531, 55.644]],
                }
            },
            "line_width_m",
            "needs line_width_m",
        ),
        ({"crs": EPSG_25832}, "crs", "look like longitude/latitude"),
        ({"geometry": mapping(CENTRE)}, "geometry", "not longitude/latitude"),
        ({"work_types": ["blasting"]}, "work_types", "unknown work type"),
        (
            {
                "end_date": date.today().isoformat(),
                "start_date": (date.today() + timedelta(days=2)).isoformat(),
            },
            "end_date",
            "before",
        ),
        ({"start_date": (date.today() - timedelta(days=1)).isoformat()}, "start_date", "past"),
        (
            {
                "start_date": (date.today() + timedelta(days=60)).isoformat(),
                "end_date": (date.today() + timedelta(days=61)).isoformat(),
            },
            "start_date",
            "working days ahead",
        ),
        ({"contact": {"name": "Nobody"}}, "contact", "phone number or an email"),
        ({"depth_m": -1}, "depth_m", "above 0"),
    ],
)
def test_bad_requests_are_refused_naming_the_fault_and_store_nothing(
    client, contractor, owner_conn, filed, change, field, words
):
    before = _count(owner_conn, "geoby.dig_requests")
    response = client.post("/api/dig-requests", json=_body(**change), headers=bearer(contractor[1]))
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in problem["detail"]
    assert field in (problem.get("field") or "") or field in json.dumps(problem)
    assert _count(owner_conn, "geoby.dig_requests") == before


def test_size_vertex_and_service_area_limits(client, contractor, owner_conn, filed):
    big = box(721_700, 6_171_900, 722_300, 6_172_300)  # 600 x 400 m
    refused = client.post("/api/dig-requests", json=_body(big), headers=bearer(contractor[1]))
    assert refused.status_code == 400 and "600 x 400 m" in refused.json()["detail"]
    planning = client.post("/api/dig-requests", json=_body(big, kind="planning"),
                           headers=bearer(contractor[1]))  # fmt: skip
    assert planning.status_code == 201, planning.text
    assert planning.json()["ready_to_dig"] is False  # planning never allows digging
    many = shapely.Point(722_175, 6_172_163).buffer(40, quad_segs=13)  # 52 vertices
    refused = client.post("/api/dig-requests", json=_body(many), headers=bearer(contractor[1]))
    assert refused.status_code == 400 and "52 vertices" in refused.json()["detail"]
    far = box(590_000, 6_140_000, 590_050, 6_140_050)  # 130 km west: no network near
    refused = client.post("/api/dig-requests", json=_body(far), headers=bearer(contractor[1]))
    assert refused.status_code == 400 and "outside the service area" in refused.json()["detail"]


def test_line_with_width_is_a_corridor(client, contractor):
    line = shapely.LineString([(722_095, 6_172_163), (722_255, 6_172_163)])
    body = _body(line, line_width_m=1.0)
    response = client.post("/api/dig-requests", json=body, headers=bearer(contractor[1]))
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["line_width_m"] == 1.0 and doc["area_m2"] == pytest.approx(160.0, rel=0.01)


def test_authentication_is_required_and_checked(client, filed, make_user, town):
    assert client.get("/api/dig-requests").status_code == 401
    bad = client.get("/api/dig-requests", headers=bearer("gby_" + "x" * 43))
    assert bad.status_code == 401 and "invalid or expired" in bad.json()["detail"]
    principal, token = make_user("Kortvarig A/S", "contractor")
    assert client.get("/api/dig-requests", headers=bearer(token)).status_code == 200
    from dig_coordination.users import revoke

    with town.connection("admin") as conn:
        revoke(conn, token[:12])
    assert client.get("/api/dig-requests", headers=bearer(token)).status_code == 401
    with town.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM geoby.tokens WHERE token_sha256 = sha256(%s::bytea)",
                    (token.encode(),))  # fmt: skip
        assert cur.fetchone()[0] == 1  # stored hashed ...
        cur.execute("SELECT count(*) FROM geoby.tokens WHERE prefix = %s OR"
                    " encode(token_sha256, 'escape') LIKE %s", (token, f"%{token[12:]}%"))  # fmt: skip
        assert cur.fetchone()[0] == 0  # ... and never in clear


def test_cancel_renew_and_damage(client, contractor, make_user, owner_conn):
    first = client.post("/api/dig-requests", json=_body(), headers=bearer(contractor[1])).json()
    renewed = client.post(f"/api/dig-requests/{first['id']}/renew",
                          json={"end_date": (date.today() + timedelta(days=20)).isoformat()},
                          headers=bearer(contractor[1]))  # fmt: skip
    assert renewed.status_code == 201, renewed.text
    assert renewed.json()["renewed_from"] == first["id"]
    assert renewed.json()["asset_count"] == first["asset_count"]
    owner = first["owners"][0]["owner"]
    damage = client.post(
        f"/api/dig-requests/{first['id']}/damages",
        json={"owner": owner, "utility_type": "telecom", "occurred_at": "2026-11-30T10:15:00",
              "description": "Fibre duct cut by excavator",
              "geometry": {"type": "Point", "coordinates": [12.532, 55.6445]}},
        headers=bearer(contractor[1]),
    )  # fmt: skip
    assert damage.status_code == 201, damage.text
    assert damage.json()["reference"] == first["reference"]
    cancelled = client.post(f"/api/dig-requests/{first['id']}/cancel",
                            headers=bearer(contractor[1]))  # fmt: skip
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    gone = client.get(f"/api/dig-requests/{first['id']}/answer", headers=bearer(contractor[1]))
    assert gone.status_code == 410
    again = client.post(f"/api/dig-requests/{first['id']}/cancel", headers=bearer(contractor[1]))
    assert again.status_code == 400


def test_owner_rules_add_to_the_defaults(client, contractor, make_user):
    owner = "NordFiber ApS"
    _, token = make_user(owner, "utility")
    rule = {"utility_type": "telecom", "max_distance_m": 5.0, "action": "supervision",
            "text": "NordFiber supervises all work within 5 m of its trunk", "blocks": True}  # fmt: skip
    added = client.post("/api/precaution-rules", json=rule, headers=bearer(token))
    assert added.status_code == 201, added.text
    assert added.json()["owner"] == owner
    filed = client.post("/api/dig-requests", json=_body(), headers=bearer(contractor[1])).json()
    doc = client.get(
        f"/api/dig-requests/{filed['id']}/answer", headers=bearer(contractor[1])
    ).json()
    fibre = [f["properties"] for f in doc["features"] if f["properties"]["owner"] == owner]
    others = [f["properties"] for f in doc["features"]
              if f["properties"]["owner"] != owner and f["properties"]["utility_type"] == "telecom"]  # fmt: skip
    assert fibre and all("supervision" in {a["action"] for a in p["required_actions"]}
                         for p in fibre)  # fmt: skip
    assert all("supervision" not in {a["action"] for a in p["required_actions"]} for p in others)
    assert doc["ready_to_dig"] is False
    contractor_try = client.post("/api/precaution-rules", json=rule, headers=bearer(contractor[1]))
    assert contractor_try.status_code == 403
    removed = client.delete(f"/api/precaution-rules/{added.json()['id']}", headers=bearer(token))
    assert removed.status_code == 204
