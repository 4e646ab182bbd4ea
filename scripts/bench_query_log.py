"""What the query log costs a request: /v1/ask latency with logging on and off.

Starts two real services (`python -m bot serve`) on loopback ports, one with the query log
on (a fresh SQLite file) and one with it off, and sends the same questions to each, one at
a time, alternating between them so both see the same machine load. Prints p50/p95 per
service and their difference, then one JSON line.

Needs a built index (`python -m bot build`). Example:
    .venv/bin/python scripts/bench_query_log.py --requests 400
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from local_service import percentile, questions, service


@contextmanager
def logging_service(log_on: bool, database: Path) -> Iterator[str]:
    env = {
        "FAQBOT_QUERY_LOG": "true" if log_on else "false",
        "FAQBOT_DATABASE_URL": f"sqlite:///{database}",
        "FAQBOT_CACHE_SIZE": "0",  # every request ranks
    }
    with service(env) as running:
        yield running.base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests to each service (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests to each first (default 20)")
    parser.add_argument(
        "--control", action="store_true", help="both services with the log off: the difference is then the noise floor"
    )
    args = parser.parse_args()
    texts = questions()
    timings: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        with logging_service(not args.control, Path(tmp) / "on.sqlite3") as on, logging_service(
            False, Path(tmp) / "off.sqlite3"
        ) as off:
            bases = {"on": on, "off": off}
            with httpx.Client(timeout=30) as client:
                for i in range(args.warmup + args.requests):
                    query = texts[i % len(texts)]
                    # Alternate which service goes first, so neither always follows the other.
                    order = ("on", "off") if i % 2 == 0 else ("off", "on")
                    for name in order:
                        started = time.perf_counter()
                        response = client.post(f"{bases[name]}/v1/ask", json={"query": query, "channel": "web", "session_id": "bench"})
                        elapsed = (time.perf_counter() - started) * 1000
                        response.raise_for_status()
                        if i >= args.warmup:
                            timings[name].append(elapsed)
                written = client.get(f"{on}/readyz").json()["query_log"]
    figures = {
        f"{name}_{stat}": round(value, 2)
        for name, values in timings.items()
        for stat, value in (("p50_ms", statistics.median(values)), ("p95_ms", percentile(values, 0.95)))
    }
    figures["p50_difference_ms"] = round(figures["on_p50_ms"] - figures["off_p50_ms"], 2)
    figures["requests_each"] = args.requests
    print(f"{'query log':<10} {'p50 ms':>8} {'p95 ms':>8}")
    for name in ("on", "off"):
        print(f"{name:<10} {figures[f'{name}_p50_ms']:>8.2f} {figures[f'{name}_p95_ms']:>8.2f}")
    print(f"p50 difference (on - off): {figures['p50_difference_ms']:+.2f} ms; rows written by the logging service: {written}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
