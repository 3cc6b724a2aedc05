"""What the reliability tests tried and saw, for the report of ``make reliability``.

Every test of ``tests/reliability`` records its figures with :func:`record`:
a category, a case name, how many cases it tried and how many failed, and any
measured figures (requests/s, p95, faults injected, data lost, ...). Lines are
appended to ``var/reliability/results.jsonl`` (``GEOBY_RELIABILITY_OUT``);
``bench/reliability.py`` turns them into the report. The test itself still
asserts: a record is the evidence, not the verdict.

``GEOBY_RELIABILITY=full`` (set by ``make reliability``) asks for the full
sizes; ``make test`` runs the quick sizes. :func:`scale` picks between them.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = ("hostile_input", "access", "load", "faults", "operations", "dependencies")
FULL = os.environ.get("GEOBY_RELIABILITY", "").lower() == "full"
_lock = threading.Lock()


def results_path() -> Path:
    return Path(
        os.environ.get("GEOBY_RELIABILITY_OUT", ROOT / "var" / "reliability" / "results.jsonl")
    )


def scale(quick: Any, full: Any) -> Any:
    """``full`` under ``make reliability``, ``quick`` in ``make test``."""
    return full if FULL else quick


def record(category: str, case: str, *, cases: int, failures: int, **figures: Any) -> None:
    """Append one result line (``figures`` must be JSON-serialisable)."""
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} is not one of {CATEGORIES}")
    line = {"category": category, "case": case, "cases": int(cases), "failures": int(failures),
            "mode": "full" if FULL else "quick", "at": datetime.now(UTC).isoformat(),
            **figures}  # fmt: skip
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, default=str) + "\n")
