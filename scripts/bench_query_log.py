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
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(log_on: bool, database: Path) -> Iterator[str]:
    """A `python -m bot serve` process on a free loopback port; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "FAQBOT_PORT": str(port),
        "FAQBOT_HOST": "127.0.0.1",
        "FAQBOT_QUERY_LOG": "true" if log_on else "false",
        "FAQBOT_DATABASE_URL": f"sqlite:///{database}",
        "FAQBOT_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the service exited with {proc.returncode}; is the index built (python -m bot build)?")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the service did not become ready in time")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def questions() -> list[str]:
    data = yaml.safe_load((ROOT / "corpus" / "eval.yaml").read_text(encoding="utf-8"))
    items = [*data["in_domain"], *data["out_of_scope"]]
    return [item["query"] for item in items if item.get("split") == "test8"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
        with service(not args.control, Path(tmp) / "on.sqlite3") as on, service(False, Path(tmp) / "off.sqlite3") as off:
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
