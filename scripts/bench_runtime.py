"""What the ONNX runtime and the ranking cache buy: /v1/ask over HTTP, PyTorch vs ONNX Runtime.

Starts real services (`python -m bot serve`) on loopback ports: PyTorch and ONNX Runtime
with the cache off, asked the same held-out questions one at a time, alternating, so both
see the same machine load; then ONNX Runtime with the cache on, asked each question
again. Then 16 concurrent clients for a few seconds against each uncached service
(scripts/loadtest.py). Prints p50/p95/p99, q/s and each server's RSS after warm-up, then
one JSON line.

Needs an index built with the default runtime (`python -m bot build`). Example:
    .venv/bin/python scripts/bench_runtime.py --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from loadtest import run as load
from local_service import Service, percentile, questions, service


def timed(client: httpx.Client, running: Service, query: str) -> float:
    started = time.perf_counter()
    response = client.post(f"{running.base}/v1/ask", json={"query": query, "channel": "web", "session_id": "bench"})
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="measured requests to each service (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests to each first (default 20)")
    parser.add_argument("--load-seconds", type=float, default=15.0, help="seconds of 16 concurrent clients (default 15)")
    args = parser.parse_args()
    texts = questions()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        common = {"FAQBOT_QUERY_LOG": "false", "FAQBOT_RATE_LIMIT": "off", "FAQBOT_DATABASE_URL": f"sqlite:///{Path(tmp) / 'log.sqlite3'}"}
        with (
            service(common | {"FAQBOT_RUNTIME": "torch", "FAQBOT_CACHE_SIZE": "0"}) as torch_service,
            service(common | {"FAQBOT_RUNTIME": "onnx", "FAQBOT_CACHE_SIZE": "0"}) as onnx_service,
            service(common | {"FAQBOT_RUNTIME": "onnx"}) as cached_service,
        ):
            services = {"torch": torch_service, "onnx": onnx_service}
            timings: dict[str, list[float]] = {name: [] for name in services}
            with httpx.Client(timeout=60) as client:
                for i in range(args.warmup + args.requests):
                    query = texts[i % len(texts)]
                    for name in (("torch", "onnx") if i % 2 == 0 else ("onnx", "torch")):
                        elapsed = timed(client, services[name], query)
                        if i >= args.warmup:
                            timings[name].append(elapsed)
                for query in texts:
                    timed(client, cached_service, query)
                cached = [timed(client, cached_service, texts[i % len(texts)]) for i in range(args.requests)]
            for name, running in services.items():
                figures[name] = summary(timings[name]) | {"rss_mib": round(running.rss_mib())}
            figures["onnx_cached"] = summary(cached)
            for name, running in services.items():
                under_load = asyncio.run(load(running.base, 16, args.load_seconds, None, None))
                figures[name] |= {  # type: ignore[operator]
                    "clients16_qps": under_load["qps"],
                    "clients16_p99_ms": under_load["p99_ms"],
                    "clients16_errors": under_load["errors"],
                }
    print(f"{'service':<12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'16 cl q/s':>10} {'16 cl p99':>10}")
    for name in ("torch", "onnx", "onnx_cached"):
        row = figures[name]
        assert isinstance(row, dict)
        print(
            f"{name:<12} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row.get('rss_mib', ''):>8} {row.get('clients16_qps', ''):>10} {row.get('clients16_p99_ms', ''):>10}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
