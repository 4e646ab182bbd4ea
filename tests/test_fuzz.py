"""A short schemathesis run over the whole /openapi.json: no generated input may get a 5xx.

The cases come from scripts/fuzz_api.py, the same code as the full run (1,000 cases), on
the session's model and index over ASGI: no socket, no network. About 100 cases, spread
over every operation, valid and invalid inputs alike, with the admin routes switched on.
"""

from __future__ import annotations

from scripts_loader import load_script

from bot.config import Settings
from bot.engine import Engine

fuzz_api = load_script("fuzz_api")

CASES = 100


def test_no_generated_input_gets_a_server_error(settings: Settings, engine: Engine) -> None:
    report = fuzz_api.run_in_process(settings, engine, cases=CASES, seed=0, max_seconds=120)
    fuzz_api.print_report(report)  # shown by pytest when the test fails: per operation, the codes seen and the failing cases
    assert not report.out_of_time
    assert report.cases >= CASES
    # Every operation in the schema was sent something (GET /healthz has only one input).
    assert all(op.cases >= 1 for op in report.operations)
    assert report.server_errors == 0, [f"{f.method} {f.path} -> {f.status}" for f in report.failures]
    assert report.failures == []
