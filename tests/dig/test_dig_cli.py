"""``geoby users`` and ``geoby dig`` as a shell user runs them, against the sample town."""

from __future__ import annotations

import json

import pytest
from shapely.geometry import box, mapping

from api.cli.serve import demo_tokens
from dig_coordination.users import authenticate
from layers.crs import reproject
from layers.errors import Unauthorized
from tests.api.test_cli import env as env  # noqa: F401, PLC0414 - the fixture
from tests.api.test_cli import geoby
from tests.dig.conftest import bearer

AREA = box(722_125, 6_172_113, 722_225, 6_172_213)


def test_users_add_prints_a_working_token_once(env, town, client):  # noqa: F811
    added = geoby(env, "users", "add", "--org", "Kabelgraverne ApS", "--role", "contractor",
                  "--email", "kontor@kabel.example")  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("gby_") and "shown only now" in added.stderr
    assert client.get("/api/dig-requests", headers=bearer(token)).status_code == 200
    listed = geoby(env, "users", "list")
    assert "Kabelgraverne ApS" in listed.stdout and token[:12] in listed.stdout
    assert token not in listed.stdout  # only the prefix is ever shown again
    revoked = geoby(env, "users", "revoke", token[:12])
    assert revoked.returncode == 0 and "1 token(s) revoked" in revoked.stdout
    assert client.get("/api/dig-requests", headers=bearer(token)).status_code == 401


def test_users_add_refuses_an_unknown_role(env):  # noqa: F811
    result = geoby(env, "users", "add", "--org", "X", "--role", "superuser")
    assert result.returncode == 2 and "superuser" in result.stderr


def test_dig_check_lists_assets_and_owners(env, town, tmp_path):  # noqa: F811
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps(mapping(reproject(AREA, 25832, 0))))
    result = geoby(env, "dig", "check", str(area), "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    summary = lines[-1]
    assets = [json.loads(line) for line in lines[:-1]]
    assert summary.startswith(f"{len(assets)} assets within 5 m")
    assert all(a["distance_m"] <= 5.0 for a in assets)
    assert "NordFiber ApS" in summary
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(mapping(AREA)))  # metres without a crs
    refused = geoby(env, "dig", "check", str(bad))
    assert refused.returncode == 2 and "longitude/latitude" in refused.stderr


def test_dig_rules_and_worker_once(env, town):  # noqa: F811
    listed = geoby(env, "dig", "rules")
    assert listed.returncode == 0 and "18 rules" in listed.stdout
    assert "high-voltage" not in listed.stdout  # the table is terse; texts are in the API
    once = geoby(env, "dig", "worker", "--once")
    assert once.returncode == 0 and "sent" in once.stdout


def test_demo_tokens_are_kept_while_they_work(town, tmp_path):
    path = tmp_path / "demo-tokens.json"
    first = json.loads(demo_tokens(town, path).read_text())
    assert set(first) == {"contractor", "utility", "planner", "admin"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = json.loads(demo_tokens(town, path).read_text())
    assert again == first
    with town.connection("admin") as conn:
        assert authenticate(conn, first["utility"]).org_name == "NordFiber ApS"
        conn.cursor().execute("UPDATE geoby.tokens SET revoked_at = now()")
    renewed = json.loads(demo_tokens(town, path).read_text())
    assert all(renewed[role] != first[role] for role in first)
    with town.connection("admin") as conn, pytest.raises(Unauthorized):
        authenticate(conn, first["admin"])
