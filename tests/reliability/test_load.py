"""Load: the API under concurrent clients mixing reads and writes, nothing lost.

``geoby serve`` runs as a real process against a private PostgreSQL cluster
holding the sample town (:mod:`tests.reliability.cluster`); locust, in its own
process, drives USERS clients for a bounded time with a mix of vector tiles,
items pages (bbox, limit), single items, the layer list, sensor readings and
dig requests (:mod:`tests.reliability.load.locustfile`). Afterwards every
write the API accepted must be in the database exactly once and every dig
request whole; requests/s and p50/p95/p99 per request type are recorded.

With a healthy database no request may fail; a 503 with ``Retry-After`` (the
pool busy past its wait) would be a retryable answer under overload: counted
and reported, not a failure. Anything else (500, a dropped connection, a 503
without ``Retry-After``) fails the test.

Quick (``make test``): 50 users for 15 s; full (``make reliability``): 50, 100
and 200 users for 40 s each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.cluster import ApiProcess, PrivateTown, private_town
from tests.reliability.load.helpers import (
    build_config,
    check_writes,
    read_stats,
    start_locust,
    summary,
    wait_locust,
)
from tests.reliability.record import record, scale

# make test runs the quick subset; this file runs in make reliability.
pytestmark = pytest.mark.reliability_full

USERS = scale([50], [50, 100, 200])
DURATION_S = scale(15, 30)


@pytest.fixture(scope="module")
def town(town_dir: Path) -> PrivateTown:
    return private_town(town_dir)


@pytest.fixture(scope="module")
def api(town: PrivateTown) -> Iterator[ApiProcess]:
    with town.api() as server:
        yield server


@pytest.mark.parametrize("users", USERS)
def test_mixed_load_loses_nothing(town: PrivateTown, api: ApiProcess, users: int,
                                  tmp_path: Path) -> None:  # fmt: skip
    config = build_config(town, api.url, tmp_path, run=f"load-{users}-{uuid.uuid4().hex[:8]}")
    locust = start_locust(api.url, tmp_path, users=users, duration_s=DURATION_S)
    wait_locust(locust, tmp_path, timeout_s=DURATION_S + 90)
    stats = read_stats(tmp_path)
    writes = check_writes(town, config)
    figures = summary(stats, writes)
    failures = stats.non_retryable + writes.problems
    record("load", f"mixed_{users}_users", cases=stats.requests, failures=failures, users=users,
           duration_s=DURATION_S, **figures)  # fmt: skip

    assert api.process.poll() is None, f"the API died under load: {api.log[-3000:]}"
    assert stats.requests > users, f"too few requests to judge: {figures}"
    assert set(stats.by_type) == {"tile", "items", "item", "layers", "reading", "dig"}, figures
    assert writes.digs_accepted > 0 and writes.readings_accepted > 0, figures
    assert stats.non_retryable == 0, f"errors other than 503 + Retry-After: {stats.errors_by_type}"
    assert not writes.lost, f"accepted writes missing from the database: {writes.lost[:10]}"
    assert not writes.duplicated, f"writes stored more than once: {writes.duplicated[:10]}"
    assert not writes.incomplete, f"half-written dig requests: {writes.incomplete[:10]}"
