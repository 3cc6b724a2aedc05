"""Reliability tests: hostile input, access, load, faults and operations.

Each test's outcome is appended to the results file beside the figures it
records (see :mod:`tests.reliability.record`), so the report counts a test
that failed before recording anything.
"""

from __future__ import annotations

import json

import pytest

from tests.reliability.record import FULL, results_path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        path = results_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        line = {"test": item.nodeid, "when": report.when, "outcome": report.outcome,
                "duration_s": round(report.duration, 2), "mode": "full" if FULL else "quick"}  # fmt: skip
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``make test`` runs the quick subset: cases marked ``reliability_full`` are deselected
    (not skipped) unless ``GEOBY_RELIABILITY=full`` (``make reliability``)."""
    if FULL:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("reliability_full") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
