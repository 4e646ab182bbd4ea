"""Fuzz the HTTP API from its own /openapi.json with schemathesis: no input may get a 5xx.

Every operation in the schema gets an even share of --cases, valid inputs interleaved
with inputs the schema forbids (wrong types, missing fields, values out of range). Each
response is checked for a server error, a status code the operation does not declare, a
content type it does not declare, and a JSON body that does not match its schema; the
first is what the issue asks for, the others catch a route whose documented contract
drifted from what it does. By default the app is built in-process from the project's
index and a snapshot of corpus/ (no network; LINE and Slack are switched on with
throwaway secrets and pointed at a closed loopback port, so their webhooks are fuzzed too
but nothing leaves the machine); with --url it talks to a running service on loopback,
where a 429 counts as fine.

The admin routes are exercised with an admin token (a fresh one in-process, or
--admin-token / FAQBOT_ADMIN_TOKEN for --url). POST /admin/reload is fuzzed, but a case
whose `force` the service would read as true is not sent: a forced reload rebuilds the
index for minutes. An unforced one of an unchanged corpus answers 200 at once.

Prints, per operation, the cases sent and the status codes seen, then the totals and each
failing case (method, path, query, body), and one JSON line. Exits 1 on a 5xx, a response
body off its schema, or (with --strict) a contract warning, and when --max-seconds ran out
before --cases were sent: a partial run proves less than it claims.

Examples:
    .venv/bin/python scripts/fuzz_api.py --cases 1000
    .venv/bin/python scripts/fuzz_api.py --url http://127.0.0.1:8000 --admin-token "$FAQBOT_ADMIN_TOKEN"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a file from anywhere: `bot` is the project's package

import httpx  # noqa: E402
import hypothesis  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, Phase, strategies as st  # noqa: E402
from pydantic import SecretStr, TypeAdapter, ValidationError  # noqa: E402
from schemathesis import Case, GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.config import Settings  # noqa: E402
from bot.engine import Engine  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Nothing listens on the discard port: a channel that tried to reply would fail at once, locally.
CLOSED_LOOPBACK = "http://127.0.0.1:9"
# A server error, or a JSON body that does not match its declared schema, fails the run.
FAILING_CHECKS = [not_a_server_error, response_schema_conformance]
# A status code or content type the schema does not declare is the documentation lagging
# behind the code: reported, and failing only with --strict.
CONTRACT_CHECKS = [status_code_conformance, content_type_conformance]
REQUEST_TIMEOUT = 60.0
# How FastAPI reads a query parameter declared bool: the same coercion pydantic applies.
_BOOL = TypeAdapter(bool)


@dataclass
class OperationStats:
    """What one operation was sent and what it answered."""

    label: str
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    skipped: int = 0
    skip_reason: str = ""


@dataclass
class FuzzFailure:
    """One case that failed a check, with what is needed to send it again."""

    label: str
    method: str
    path: str
    query: dict[str, Any] | None
    body: Any
    status: int
    problems: list[str]
    curl: str


@dataclass
class FuzzReport:
    """The run's figures; `failures` fail it, `warnings` (contract drift) only with strict."""

    operations: list[OperationStats]
    failures: list[FuzzFailure]
    warnings: list[FuzzFailure]
    seconds: float
    out_of_time: bool = False

    @property
    def cases(self) -> int:
        return sum(op.cases for op in self.operations)

    @property
    def server_errors(self) -> int:
        return sum(n for op in self.operations for code, n in op.statuses.items() if code >= 500)


class _OutOfTime(Exception):
    """Raised inside a Hypothesis test to stop generating once the run's time is up."""


def fuzz_settings(base: Settings, folder: Path, admin_token: str) -> Settings:
    """The service's settings for an in-process run: admin routes on, no rate limit (a 429
    would hide the handler behind it), a throwaway query log, every channel on but able to
    reach nothing except a closed loopback port, and no shared Redis. The corpus is a
    snapshot in `folder`, so an edit to corpus/ during the run cannot turn an unforced
    POST /admin/reload into a rebuild; the index, keyed by the corpus's content, still fits."""
    snapshot = folder / "corpus"
    shutil.copytree(base.corpus_dir, snapshot)
    return base.model_copy(
        update={
            "corpus_dir": snapshot,
            "admin_token": SecretStr(admin_token),
            "rate_limit": "off",
            "database_url": f"sqlite:///{folder / 'fuzz.sqlite3'}",
            "redis_url": None,
            "log_level": "WARNING",
            "line_channel_secret": SecretStr(secrets.token_hex(16)),
            "line_channel_access_token": SecretStr(secrets.token_urlsafe(32)),
            "line_api_base_url": CLOSED_LOOPBACK,
            "slack_signing_secret": SecretStr(secrets.token_hex(16)),
            "slack_bot_token": SecretStr("xoxb-" + secrets.token_hex(16)),
            "slack_api_base_url": f"{CLOSED_LOOPBACK}/api/",
        }
    )


def forced_reload(case: Case) -> bool:
    """Whether the service would read this POST /admin/reload as force=true: FastAPI takes
    the last value of a repeated parameter and coerces it like pydantic's bool."""
    if case.operation.method.upper() != "POST" or case.operation.path != "/admin/reload":
        return False
    value = (case.query or {}).get("force")
    values = value if isinstance(value, list) else [value]
    for item in values:
        if item is None:
            continue
        text = json.dumps(item) if isinstance(item, bool) else str(item)
        try:
            if _BOOL.validate_python(text):
                return True
        except ValidationError:
            continue
    return False


def _skip_reason(case: Case) -> str | None:
    if forced_reload(case):
        return "force=true would rebuild the index for minutes; such cases are not sent"
    return None


def _case_strategy(operation: Any, faq_ids: Sequence[str] = ()) -> st.SearchStrategy[Case]:
    """Valid and invalid inputs, interleaved (an operation with nothing to make invalid gets
    only valid ones), and real entry ids for a `faq_id` path parameter."""
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    if faq_ids and "{faq_id}" in operation.path:
        strategies.append(
            st.sampled_from(list(faq_ids)).flatmap(
                lambda faq_id: operation.as_strategy(path_parameters={"faq_id": faq_id})
            )
        )
    try:
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 (schemathesis refuses to negate some operations; valid inputs still run)
        pass
    return st.one_of(strategies)


def _complexity(operation: Any) -> int:
    """Operations with fewer inputs run first: Hypothesis stops early on a small input space,
    and the cases they do not use go to the operations that follow."""
    definition = operation.definition.raw
    return len(definition.get("parameters", [])) + (2 if "requestBody" in definition else 0)


def run(
    schema: Any,
    *,
    cases: int = 1000,
    seed: int = 0,
    headers: dict[str, str] | None = None,
    base_url: str | None = None,
    allow_429: bool = False,
    strict: bool = False,
    max_seconds: float = 900.0,
    faq_ids: Sequence[str] = (),
) -> FuzzReport:
    """Fuzz every operation of a loaded schemathesis schema with at least `cases` cases in
    total (unless time runs out), spread evenly over the operations. In-process schemas
    (`from_asgi`) need no `base_url`. With `strict`, undeclared status codes and content
    types fail the run too; otherwise they are warnings. `faq_ids`, the corpus's entry
    ids, are mixed into generated `faq_id` path parameters: random text never names an
    entry, and the found-entry path deserves its share."""
    began = time.monotonic()
    deadline = began + max_seconds
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_complexity)
    stats = {operation.label: OperationStats(operation.label) for operation in operations}
    run_state = _RunState(deadline, headers, base_url, allow_429, strict)
    remaining = cases
    active = operations
    rounds = 0
    # Hypothesis stops early on an operation with few possible inputs (GET /healthz has one);
    # the cases it leaves go to the others, in further rounds if need be.
    while remaining > 0 and active and not run_state.out_of_time:
        still_open = []
        sent_this_round = 0
        for position, operation in enumerate(active):
            op_stats = stats[operation.label]
            share = max(1, math.ceil(remaining / (len(active) - position)))
            sent_before, skipped_before = op_stats.cases, op_stats.skipped
            started = time.monotonic()
            test = hypothesis.settings(
                max_examples=share,
                deadline=None,
                database=None,  # no .hypothesis folder in the project
                phases=[Phase.generate],  # failures are collected, not raised: nothing to shrink
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )(
                hypothesis.seed(seed * 1_000_003 + rounds * 1000 + position)(
                    hypothesis.given(case=_case_strategy(operation, faq_ids))(run_state.runner(op_stats))
                )
            )
            try:
                test()
            except _OutOfTime:
                run_state.out_of_time = True
            op_stats.seconds += time.monotonic() - started
            sent = op_stats.cases - sent_before
            remaining -= sent  # cases not sent (a forced reload) do not count
            sent_this_round += sent
            if sent + op_stats.skipped - skipped_before >= share:
                still_open.append(operation)
            if run_state.out_of_time:
                break
        if sent_this_round == 0:
            break
        active = still_open
        rounds += 1
    return FuzzReport(
        list(stats.values()), run_state.failures, run_state.warnings, round(time.monotonic() - began, 1), run_state.out_of_time
    )


@dataclass
class _RunState:
    """What every case of one run shares: where to send it, and the failures found so far."""

    deadline: float
    headers: dict[str, str] | None
    base_url: str | None
    allow_429: bool
    strict: bool
    failures: list[FuzzFailure] = field(default_factory=list)
    warnings: list[FuzzFailure] = field(default_factory=list)
    seen: set[tuple[str, int, tuple[str, ...]]] = field(default_factory=set)
    out_of_time: bool = False

    def runner(self, op_stats: OperationStats) -> Callable[[Case], None]:
        """The Hypothesis test body for one operation: send the case, count its status, check the response."""

        def one_case(case: Case) -> None:
            if time.monotonic() > self.deadline:
                raise _OutOfTime
            reason = _skip_reason(case)
            if reason is not None:
                op_stats.skipped += 1
                op_stats.skip_reason = reason
                return
            response = case.call(base_url=self.base_url, headers=self.headers, timeout=REQUEST_TIMEOUT)
            op_stats.cases += 1
            op_stats.statuses[response.status_code] += 1
            if self.allow_429 and response.status_code == 429:
                return  # a running service's rate limit, not a handler's answer
            hard = [*FAILING_CHECKS, *(CONTRACT_CHECKS if self.strict else [])]
            soft = [] if self.strict else CONTRACT_CHECKS
            for checks, found in ((hard, self.failures), (soft, self.warnings)):
                if not checks:
                    continue
                try:
                    case.validate_response(response, checks=checks, headers=self.headers)
                except FailureGroup as group:
                    self._record(case, response.status_code, list(group.exceptions), found)
                except Failure as failure:
                    self._record(case, response.status_code, [failure], found)

        return one_case

    def _record(self, case: Case, status: int, problems_found: list[Failure], into: list[FuzzFailure]) -> None:
        """Keep the first case of each distinct (operation, status, problem), so a run with
        one bug does not print it a thousand times."""
        problems = sorted({_problem_line(failure) for failure in problems_found})
        key = (case.operation.label, status, tuple(sorted({failure.title for failure in problems_found})))
        if key in self.seen:
            return
        self.seen.add(key)
        body = None if _is_unset(case.body) else case.body
        try:
            curl = case.as_curl_command(base_url=self.base_url)
        except Exception:  # noqa: BLE001 (a body curl cannot express; method, path, query and body still reproduce it)
            curl = ""
        into.append(FuzzFailure(case.operation.label, case.method, case.formatted_path, case.query, body, status, problems, curl))


def _problem_line(failure: Failure) -> str:
    first = failure.message.strip().splitlines()[0] if failure.message.strip() else ""
    return f"{failure.title}: {first}" if first else failure.title


def _is_unset(value: object) -> bool:
    """Whether schemathesis left the body out (its NOT_SET marker)."""
    return type(value).__name__ == "NotSet"


def run_in_process(
    settings: Settings,
    engine: Engine | None = None,
    *,
    cases: int = 1000,
    seed: int = 0,
    strict: bool = False,
    max_seconds: float = 900.0,
) -> FuzzReport:
    """Build the app from `settings` through fuzz_settings (loading the engine from its
    index unless one is given) and fuzz it over ASGI: no socket is opened. Its lifespan
    (the query log's writer) is shut down, and the throwaway log deleted, before returning."""
    from schemathesis.python import asgi

    from bot.api import create_app
    from bot.engine import load_engine

    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="faqbot-fuzz-") as folder:
        fuzz = fuzz_settings(settings, Path(folder), token)
        engine = engine if engine is not None else load_engine(fuzz)
        app = create_app(fuzz, engine)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        try:
            return run(
                schema,
                cases=cases,
                seed=seed,
                headers={"Authorization": f"Bearer {token}"},
                strict=strict,
                max_seconds=max_seconds,
                faq_ids=[entry.id for entry in engine.corpus.entries],
            )
        finally:
            app.state.reloader.wait(timeout=REQUEST_TIMEOUT)  # nothing may still write into `folder`
            asgi.shutdown_lifespans()


def run_against_url(
    url: str,
    *,
    admin_token: str | None,
    cases: int = 1000,
    seed: int = 0,
    strict: bool = False,
    max_seconds: float = 900.0,
) -> FuzzReport:
    """Fuzz a running service on loopback; a 429 from its rate limit counts as fine. Its
    query log keeps the fuzzed questions, as it keeps the load test's."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit("the fuzzer talks to loopback addresses only")
    base = url.rstrip("/")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=30)
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else None
    listing = httpx.get(f"{base}/v1/faq", timeout=30)
    faq_ids = [entry["id"] for entry in listing.json()["entries"]] if listing.status_code == 200 else []
    return run(
        schema,
        cases=cases,
        seed=seed,
        headers=headers,
        base_url=base,
        allow_429=True,
        strict=strict,
        max_seconds=max_seconds,
        faq_ids=faq_ids,
    )


def _operation_line(op: OperationStats) -> str:
    codes = ", ".join(f"{code}×{n}" for code, n in sorted(op.statuses.items())) or "-"
    line = f"{op.label:<28} {op.cases:>5} cases {op.seconds:>6.1f} s  {codes}"
    if op.skipped:
        line += f"\n{'':<28} {op.skipped:>5} not sent: {op.skip_reason}"
    return line


def _print_case(kind: str, failure: FuzzFailure) -> None:
    print(f"\n{kind} {failure.method} {failure.path} -> {failure.status}")
    for problem in failure.problems:
        print(f"  {problem}")
    if failure.query:
        print(f"  query: {json.dumps(failure.query, ensure_ascii=False, default=repr)}")
    if failure.body is not None:
        print(f"  body: {json.dumps(failure.body, ensure_ascii=False, default=repr)[:2000]}")
    if failure.curl:
        print(f"  {failure.curl.splitlines()[0][:2000]}")


def print_report(report: FuzzReport) -> None:
    for op in report.operations:
        print(_operation_line(op))
    print(
        f"\n{report.cases} cases over {len(report.operations)} operations in {report.seconds} s; "
        f"{report.server_errors} 5xx; {len(report.failures)} failing, {len(report.warnings)} contract warnings (distinct cases)"
    )
    if report.out_of_time:
        print("stopped at --max-seconds: not every operation got its share")
    if any(op.label == "POST /admin/reload" and op.statuses[202] for op in report.operations):
        print("note: POST /admin/reload answered 202: the corpus changed on disk during the run and a new engine was built")
    for failure in report.failures:
        _print_case("FAIL", failure)
    for warning in report.warnings:
        _print_case("WARN", warning)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000, help="cases in total, spread over all operations")
    parser.add_argument("--url", default=None, help="a running service on loopback (default: the app, in-process)")
    parser.add_argument("--admin-token", default=os.environ.get("FAQBOT_ADMIN_TOKEN"), help="the service's, for --url")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strict", action="store_true", help="undeclared status codes and content types fail too")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop generating after this long")
    args = parser.parse_args()
    if not 1 <= args.cases <= 100_000 or not 0 < args.max_seconds <= 7200:
        raise SystemExit("--cases must be 1..100000 and --max-seconds 0..7200")
    options: dict[str, Any] = {"cases": args.cases, "seed": args.seed, "strict": args.strict, "max_seconds": args.max_seconds}
    if args.url is not None:
        report = run_against_url(args.url, admin_token=args.admin_token, **options)
    else:
        report = run_in_process(Settings(), **options)
    print_report(report)
    failed = bool(report.failures or report.server_errors or report.out_of_time)
    figures = {
        "cases": report.cases,
        "server_errors": report.server_errors,
        "failures": len(report.failures),
        "warnings": len(report.warnings),
        "seconds": report.seconds,
        "ok": not failed,
    }
    print(json.dumps(figures))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
