"""`make reliability`: hostile input, access, load, faults, operations and dependencies, one report.

Runs the reliability tests (``tests/reliability`` and the backup round trip in
``tests/layers/test_backup.py``) at their full sizes (``GEOBY_RELIABILITY=full``)
in a database of their own (``geoby_test_reliability``), audits the installed
packages, checks that every dependency has a lower bound, and writes

* ``bench/results/reliability.json``: every recorded line and the totals;
* ``bench/results/reliability.md``: the report: cases tried and failures per
  category, load held (requests/s, p95, p99 per client count), faults injected
  and data lost, and the dependency audit.

Each test records what it tried with :func:`tests.reliability.record.record`
and asserts it as well; a test that failed before recording anything still
counts as a failure of its category (the outcome of every test is recorded by
``tests/reliability/conftest.py``). The exit status is non-zero when any
failure, lost datum or known vulnerability is found.

    .venv/bin/python bench/reliability.py            # full sizes (make reliability), < 15 min
    .venv/bin/python bench/reliability.py --quick    # the sizes `make test` runs

The vulnerability audit is pip-audit against PyPI's advisory data. Where that
service cannot be reached (a machine that reaches only a package mirror), the
report says "not audited" for it rather than "clean".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "var" / "reliability" / "results.jsonl"
OUT_JSON = ROOT / "bench" / "results" / "reliability.json"
OUT_MD = ROOT / "bench" / "results" / "reliability.md"
BIN = Path(sys.executable).parent
TESTS = ["tests/reliability", "tests/layers/test_backup.py"]
CATEGORIES = ("hostile_input", "access", "load", "faults", "operations", "dependencies")

# Test files whose outcome counts in a category when they recorded nothing themselves.
_FILE_CATEGORY = {
    "test_contract": "hostile_input", "test_hostile_files": "hostile_input",
    "test_injection": "hostile_input", "test_access_matrix": "access", "test_tokens": "access",
    "test_load": "load", "test_pg_restart": "faults", "test_fault_broker": "faults",
    "test_fault_notify": "faults", "test_fault_flood_job": "faults",
    "test_operations": "operations", "test_backup": "operations",
}  # fmt: skip


def _category_of(nodeid: str) -> str:
    stem = Path(nodeid.split("::")[0]).stem
    return _FILE_CATEGORY.get(stem, "operations")


def run_tests(full: bool, database: str) -> tuple[int, float]:
    """pytest over the reliability tests; returns its exit code and wall time."""
    env = dict(os.environ, GEOBY_RELIABILITY="full" if full else "quick",
               GEOBY_TEST_DATABASE=database, GEOBY_RELIABILITY_OUT=str(RESULTS))  # fmt: skip
    started = time.perf_counter()
    cmd = [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
    print("$", " ".join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    return code, time.perf_counter() - started


def lower_bounds() -> dict[str, Any]:
    """Every requirement of pyproject.toml has a lower bound (``>=`` or ``==``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    missing = sorted({r for r in reqs if not re.search(r"(>=|==|~=)\s*\d", r)})
    return {"requirements": len(set(reqs)), "without_lower_bound": missing}


def audit() -> dict[str, Any]:
    """pip-audit of the virtual environment (the editable geoby itself skipped)."""
    cmd = [str(BIN / "pip-audit"), "--progress-spinner", "off", "--skip-editable", "-f", "json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"audited": 0, "status": f"not audited: {exc}"}
    try:
        doc = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return {
            "audited": 0,
            "status": "not audited: " + (proc.stderr.strip()[-300:] or "no output"),
        }
    deps = doc.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    vulns = [{"package": d["name"], "version": d["version"], "id": v["id"],
              "fix_versions": v.get("fix_versions", [])}
             for d in audited for v in d.get("vulns", [])]  # fmt: skip
    if deps and not audited:
        status = (f"not audited: none of {len(deps)} packages could be looked up "
                  "(the advisory service is not reachable from this machine)")  # fmt: skip
    else:
        status = "clean" if not vulns else f"{len(vulns)} known vulnerabilities"
    return {"packages": len(deps), "audited": len(audited), "vulnerabilities": vulns,
            "status": status}  # fmt: skip


def summarise(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals per category from the recorded lines and the test outcomes."""
    records = [x for x in lines if "category" in x]
    outcomes = [x for x in lines if "outcome" in x]
    cats: dict[str, dict[str, Any]] = {
        c: {"cases": 0, "failures": 0, "tests": 0, "tests_failed": 0} for c in CATEGORIES
    }
    for r in records:
        cats[r["category"]]["cases"] += r["cases"]
        cats[r["category"]]["failures"] += r["failures"]
    for o in outcomes:
        c = cats[_category_of(o["test"])]
        c["tests"] += o["when"] == "call" or o["outcome"] != "passed"
        if o["outcome"] == "failed":
            c["tests_failed"] += 1
    load = [r for r in records if r["category"] == "load"]
    faults = [r for r in records if r["category"] == "faults"]
    return {
        "categories": cats,
        "load": [
            {
                k: r.get(k)
                for k in (
                    "case",
                    "users",
                    "duration_s",
                    "cases",
                    "rps",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                    "errors",
                    "failures",
                )
            }
            for r in load
        ],  # fmt: skip
        "faults": [
            {
                k: r.get(k)
                for k in ("case", "faults_injected", "data_lost", "cases", "failures", "recovery_s")
            }
            for r in faults
        ],  # fmt: skip
        "faults_injected": sum(int(r.get("faults_injected") or 0) for r in faults),
        "data_lost": sum(int(r.get("data_lost") or 0) for r in records),
        "failures": sum(c["failures"] + c["tests_failed"] for c in cats.values()),
    }


def _md(report: dict[str, Any]) -> str:
    s = report["summary"]
    out = [
        "# geoby reliability report", "",
        f"{report['finished']} · mode {report['mode']} · tests {report['pytest_exit']} "
        f"(exit code) in {report['wall_s']:.0f} s · failures **{s['failures']}** · "
        f"data lost **{s['data_lost']}** · faults injected {s['faults_injected']}", "",
        "Reproduce: `make reliability` (or `.venv/bin/python bench/reliability.py [--quick]`).", "",
        "## Cases per category", "",
        "| category | cases tried | failures | tests | tests failed |",
        "|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for name, c in s["categories"].items():
        out.append(f"| {name} | {c['cases']:,} | {c['failures']} | {c['tests']} | "
                   f"{c['tests_failed']} |")  # fmt: skip
    out += ["", "## Load held", "",
            "| case | clients | s | requests | req/s | p50 ms | p95 ms | p99 ms | errors | "
            "failures |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    for r in s["load"]:
        out.append(
            f"| {r['case']} | {r['users']} | {r['duration_s']} | {r['cases']:,} | {r['rps']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors'] or {}} | "
            f"{r['failures']} |"
        )
    out += ["", "## Faults", "", "| case | injected | data lost | cases | failures | recovery s |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in s["faults"]:
        out.append(f"| {r['case']} | {r['faults_injected']} | {r['data_lost']} | {r['cases']} | "
                   f"{r['failures']} | {r['recovery_s'] if r['recovery_s'] is not None else ''} |")  # fmt: skip
    dep = report["dependencies"]
    out += ["", "## Dependencies", "",
            f"- Lower bounds: {dep['lower_bounds']['requirements']} requirements, without a lower "
            f"bound: {dep['lower_bounds']['without_lower_bound'] or 'none'}",
            f"- Vulnerability audit (pip-audit): {dep['audit']['status']}"]  # fmt: skip
    for v in dep["audit"].get("vulnerabilities", []):
        out.append(f"  - {v['package']} {v['version']}: {v['id']} (fixed in {v['fix_versions']})")
    out += ["", "## Every recorded case", "", "| category | case | cases | failures | figures |",
            "|---|---|---:|---:|---|"]  # fmt: skip
    skip = {"category", "case", "cases", "failures", "mode", "at"}
    for r in report["records"]:
        figures = ", ".join(f"{k}={v}" for k, v in r.items() if k not in skip)
        out.append(f"| {r['category']} | {r['case']} | {r['cases']:,} | {r['failures']} | "
                   f"{figures} |")  # fmt: skip
    failed = [o for o in report["outcomes"] if o["outcome"] == "failed"]
    if failed:
        out += ["", "## Failed tests", ""] + [f"- `{o['test']}` ({o['when']})" for o in failed]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the sizes `make test` runs")
    parser.add_argument("--database", default="geoby_test_reliability",
                        help="test database (dropped and rebuilt)")  # fmt: skip
    parser.add_argument("--no-audit", action="store_true", help="skip pip-audit")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.unlink(missing_ok=True)
    code, wall = run_tests(not args.quick, args.database)
    lines = [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()] \
        if RESULTS.exists() else []  # fmt: skip
    audit_result = {"status": "not run (--no-audit)", "audited": 0} if args.no_audit else audit()
    bounds = lower_bounds()
    summary = summarise(lines)
    summary["categories"]["dependencies"]["cases"] += bounds["requirements"] + audit_result.get(
        "audited", 0
    )
    dep_failures = len(bounds["without_lower_bound"]) + len(audit_result.get("vulnerabilities", []))
    summary["categories"]["dependencies"]["failures"] += dep_failures
    summary["failures"] += dep_failures
    report = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "pytest_exit": code,
        "wall_s": wall,
        "summary": summary,
        "dependencies": {"lower_bounds": bounds, "audit": audit_result},
        "records": [x for x in lines if "category" in x],
        "outcomes": [x for x in lines if "outcome" in x],
    }
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(report, indent=1, default=str))
    OUT_MD.write_text(_md(report))
    print(_md(report).split("## Every recorded case")[0])
    print(f"report: {OUT_MD.relative_to(ROOT)}, {OUT_JSON.relative_to(ROOT)}")
    bad = code != 0 or summary["failures"] or summary["data_lost"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
