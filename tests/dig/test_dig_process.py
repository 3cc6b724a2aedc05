"""``dig-check`` through OGC API - Processes: owners and counts, never asset detail."""

from __future__ import annotations

import json

from shapely.geometry import box, mapping

from layers.crs import reproject

AREA = box(722_125, 6_172_113, 722_225, 6_172_213)


def _execute(client, inputs: dict):
    return client.post("/ogc/processes/dig-check/execution", json={"inputs": inputs})


def test_dig_check_is_listed(client):
    listed = client.get("/ogc/processes").json()
    assert "dig-check" in {p["id"] for p in listed["processes"]}


def test_dig_check_names_owners_and_counts_without_detail(client, owner_conn):
    geometry = mapping(reproject(AREA, 25832, 0))
    response = _execute(client, {"geometry": geometry, "work_types": ["directional_drilling"]})
    assert response.status_code == 200, response.text
    doc = response.json()
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT owner, count(*) FROM (SELECT owner, geom FROM restricted.utilities_lines"
            " UNION ALL SELECT owner, geom FROM restricted.utilities_points"
            " UNION ALL SELECT owner, geom FROM restricted.utilities_areas) a"
            " WHERE ST_DWithin(geom, ST_GeomFromText(%s, 25832), 5) GROUP BY owner",
            (AREA.wkt,),
        )
        truth = dict(cur.fetchall())
        cur.execute("SELECT asset_id FROM restricted.utilities_lines"
                    " WHERE ST_DWithin(geom, ST_GeomFromText(%s, 25832), 5)", (AREA.wkt,))  # fmt: skip
        secrets = [row[0] for row in cur.fetchall()]
    got = {o["owner"]: o["assets"] for o in doc["owners"] if o["assets"]}
    assert got == truth
    assert doc["asset_count"] == sum(truth.values())
    assert any(o["blocking"] for o in doc["owners"])  # drilling near fibre needs marking
    text = json.dumps(doc)
    assert secrets and not any(s in text for s in secrets)
    assert "coordinates" not in text and "depth" not in text
    with owner_conn.cursor() as cur:
        cur.execute("SELECT detail FROM geoby.audit_log WHERE action = 'dig_check.disclosed'"
                    " ORDER BY id DESC LIMIT 1")  # fmt: skip
        assert cur.fetchone()[0]["assets"] == doc["asset_count"]


def test_dig_check_refuses_bad_input_naming_it(client):
    bow_tie = {"type": "Polygon", "coordinates": [[[12.530, 55.644], [12.532, 55.645],
                                                   [12.532, 55.644], [12.530, 55.645],
                                                   [12.530, 55.644]]]}  # fmt: skip
    response = _execute(client, {"geometry": bow_tie})
    assert response.status_code == 400
    assert "Self-intersection" in response.text and "geometry" in response.text
    response = _execute(client, {"geometry": mapping(AREA)})  # metres given as lon/lat
    assert response.status_code == 400 and "longitude/latitude" in response.text
    response = _execute(client, {"geometry": mapping(reproject(AREA, 25832, 0)),
                                 "work_types": ["blasting"]})  # fmt: skip
    assert response.status_code == 400 and "work_types" in response.text
