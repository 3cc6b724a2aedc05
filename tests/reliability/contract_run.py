"""Schemathesis over geoby's OpenAPI documents: generate, send, check, count.

:mod:`tests.reliability.test_contract` loads the two documents geoby serves
(FastAPI's at ``/api/openapi.json``, pygeoapi's at ``/ogc/openapi?f=json``) into
schemathesis and calls :func:`run_operations` once per role. Every operation is
fuzzed in-process over ASGI with schema-conforming (positive) and
schema-violating (negative) requests, and every response goes through
schemathesis' own checks plus :func:`no_leak`. Failures are collected rather
than raised, so one run reports every operation at fault, with a curl command
to reproduce each.

Hypothesis runs derandomized (a fixed seed per operation and mode), without its
example database and without deadlines: the run is reproducible and its cost
depends only on ``max_examples``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import requests
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# What a response body must never carry: a Python traceback, SQL or driver text,
# a connection string or credential, a path on the server.
LEAKS: dict[str, re.Pattern[str]] = {
    "traceback": re.compile(r"Traceback \(most recent call last\)|File \"/"),
    "sql": re.compile(
        r"\bSELECT\s+\S+.*\bFROM\b|\bINSERT INTO\b|\bsyntax error at or near\b|"
        r"\brelation \"|\bviolates [a-z ]*constraint\b|\bpsycopg2?\b|"
        # psycopg2's error classes (not "InvalidParameterValue": an OGC exception code too)
        r"\b(?:UndefinedTable|UndefinedColumn|UndefinedFunction|InvalidTextRepresentation|"
        r"ProgrammingError|OperationalError|IntegrityError|NumericValueOutOfRange|"
        r"DatetimeFieldOverflow|InvalidDatetimeFormat)\b|\bLINE \d+:",
        re.IGNORECASE | re.DOTALL,
    ),
    "dsn": re.compile(r"postgres(?:ql)?://|\bpassword=|\bdbname=", re.IGNORECASE),
    "path": re.compile(r"/work/|/home/|/root/|/tmp/|site-packages|/usr/lib/python|\.py\b"),
}
BINARY = ("image/", "application/pdf", "application/vnd.mapbox-vector-tile", "application/x-protobuf")  # fmt: skip
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def no_leak(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Fail when the body shows a traceback, SQL or driver text, a DSN or a server path."""
    media = response.headers.get("content-type", [""])[0].lower()
    if media.startswith(BINARY):
        return None
    text = response.content.decode("utf-8", "replace") if response.content else ""
    for kind, pattern in LEAKS.items():
        found = pattern.search(text)
        if found:
            start = max(found.start() - 60, 0)
            raise AssertionError(f"response leaks {kind}: ...{text[start : found.end() + 60]!r}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, no_leak]  # fmt: skip


@dataclass
class Tally:
    """What one role's run sent and saw."""

    cases: int = 0
    failed_cases: int = 0
    operations: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)  # by operation
    failures: list[str] = field(default_factory=list)
    failed_operations: set[str] = field(default_factory=set)

    def report(self, limit: int = 15) -> str:
        """The failures, one paragraph each, at most ``limit`` of them."""
        shown = self.failures[:limit]
        more = len(self.failures) - len(shown)
        return "\n\n".join(shown) + (f"\n\n... and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class Plan:
    """How to fuzz one operation.

    ``modes``: the generation modes run (an operation whose success starts
    minutes of computation is run with negative data only). ``known``: real
    path-parameter values; half the examples use them so the request reaches an
    object that exists. ``tame``: rewrites a generated case before it is sent
    (to keep a cost bound such as a search time small). ``examples``: a lower
    number of examples for an operation whose every call costs seconds.
    """

    modes: tuple[GenerationMode, ...] = MODES
    known: dict[str, list[Any]] = field(default_factory=dict)
    tame: Callable[[Case], Case] | None = None
    examples: int | None = None


def operations(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of ``schema``; a document schemathesis cannot read fails the run."""
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


def run_operations(
    ops: Iterable[APIOperation],
    *,
    headers: dict[str, str],
    max_examples: int,
    plan: Callable[[APIOperation], Plan | None],
    tally: Tally,
    max_failures_per_operation: int = 3,
    timeout_s: float = 60.0,
) -> Tally:
    """Fuzz every operation of ``ops`` with ``headers`` and add what happened to ``tally``.

    ``plan(operation)`` returns how to fuzz it, or None to leave it out (the
    caller says why). Each mode gets ``max_examples`` examples.
    """
    for operation in ops:
        how = plan(operation)
        if how is None:
            continue
        tally.operations += 1
        started = time.perf_counter()
        examples = min(max_examples, how.examples or max_examples)
        for mode in how.modes:
            _run_one(operation, mode, how, headers, examples, tally,
                     max_failures_per_operation, timeout_s)  # fmt: skip
        tally.seconds[operation.label] += time.perf_counter() - started
    return tally


def _strategy(operation: APIOperation, mode: GenerationMode, how: Plan) -> st.SearchStrategy:
    generated = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    known = {k: v for k, v in how.known.items() if k in names and v}
    if known:
        fixed = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in known.items()})
        with_real = fixed.flatmap(
            lambda values: operation.as_strategy(generation_mode=mode, path_parameters=values)
        )
        generated = st.one_of(generated, with_real)
    if how.tame is not None:
        generated = generated.map(how.tame)
    return generated


def _run_one(
    operation: APIOperation,
    mode: GenerationMode,
    how: Plan,
    headers: dict[str, str],
    max_examples: int,
    tally: Tally,
    max_failures: int,
    timeout_s: float,
) -> None:
    seen: list[str] = []

    @hypothesis.settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        print_blob=False,
    )
    @given(case=_strategy(operation, mode, how))
    def send(case: Case) -> None:
        tally.cases += 1
        try:
            response = case.call(headers=headers, timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - no answer in time, or the app raised: a 5xx
            tally.failed_cases += 1
            tally.failed_operations.add(operation.label)
            if len(seen) < max_failures:
                kind = "no answer" if isinstance(exc, requests.RequestException) else "raised"
                seen.append(f"[{mode.value}] {operation.label}: {kind}: {exc!r}\n"
                            f"{case.as_curl_command(headers=headers)}")  # fmt: skip
            return
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            tally.failed_cases += 1
            tally.failed_operations.add(operation.label)
            if len(seen) < max_failures:
                seen.append(f"[{mode.value}] {operation.label}: {group}")

    try:
        send()
    except hypothesis.errors.Unsatisfiable:
        # Nothing to negate: an operation without parameters or body has no invalid input.
        if mode is not GenerationMode.NEGATIVE:
            raise
    tally.failures.extend(seen)
