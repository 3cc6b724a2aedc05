"""``geoby waste ...`` and ``geoby broker ...`` as an operator runs them, on the sample town."""

from __future__ import annotations

import json

from tests.api.test_cli import env as env  # noqa: F401, PLC0414 - the fixture
from tests.api.test_cli import geoby
from waste import service


def test_plan_prints_the_bins_the_service_plans(env, history_town):  # noqa: F811
    result = geoby(env, "waste", "plan", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [b["bin_id"] for b in printed["bins"]] == [
        b["bin_id"] for b in service.plan(history_town)["bins"]]  # fmt: skip
    text = geoby(env, "waste", "plan", "--threshold", "0.9")
    assert text.returncode == 0 and "bins to empty" in text.stdout.splitlines()[-1]
    bad = geoby(env, "waste", "plan", "--day", "tomorrow")
    assert bad.returncode == 2 and "day" in bad.stderr


def test_routes_are_stored_and_summarised(env, history_town):  # noqa: F811
    result = geoby(env, "waste", "routes", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "routes" in last and "waste_routes" in last
    with history_town.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM data.waste_routes")
        assert cur.fetchone()[0] > 0


def test_coverage_and_alerts(env, history_town):  # noqa: F811
    result = geoby(env, "waste", "coverage", "--walk-m", "300", "--propose", "1")
    assert result.returncode == 0, result.stderr
    assert "glass" in result.stdout and "new station at" in result.stdout
    alerts = geoby(env, "waste", "alerts", "--check-dead")
    assert alerts.returncode == 0, alerts.stderr
    assert "dead-sensor alert(s) raised" in alerts.stdout


def test_broker_commands_refuse_a_broker_that_is_not_ours(env):  # noqa: F811
    remote = dict(env, GEOBY_BROKER_HOST="broker.example")
    result = geoby(remote, "broker", "down")
    assert result.returncode == 1 and "not geoby's" in result.stderr
