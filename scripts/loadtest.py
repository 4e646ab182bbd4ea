"""Load test: N concurrent clients asking for T seconds against a running service.

Loopback only, bounded in time. With --reload-at S, a forced reload is started S
seconds in (needs --admin-token) and its duration reported: every request must still
succeed. Prints requests, errors, p50/p95/p99 and q/s, then one JSON line.

Example:
    .venv/bin/python scripts/loadtest.py --url http://127.0.0.1:8000 --clients 32 --seconds 60 \\
        --reload-at 30 --admin-token "$FAQBOT_ADMIN_TOKEN"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

import httpx
from local_service import percentile, questions

LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def client_loop(
    client: httpx.AsyncClient, url: str, texts: list[str], start: int, deadline: float,
    latencies: list[float], errors: list[str],
) -> None:
    i = start
    while time.monotonic() < deadline:
        query = texts[i % len(texts)]
        i += 7
        began = time.perf_counter()
        try:
            response = await client.post(url, json={"query": query, "channel": "api"})
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:120]}")
                continue
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append((time.perf_counter() - began) * 1000)


async def reload_during(client: httpx.AsyncClient, base: str, token: str, at: float, deadline: float) -> dict[str, object]:
    await asyncio.sleep(at)
    headers = {"authorization": f"Bearer {token}"}
    began = time.monotonic()
    started = await client.post(f"{base}/admin/reload", params={"force": "true"}, headers=headers)
    status: dict[str, object] = started.json()
    while status.get("state") == "building" and time.monotonic() < deadline + 600:
        await asyncio.sleep(0.5)
        status = (await client.get(f"{base}/admin/reload", headers=headers)).json()
    status["observed_seconds"] = round(time.monotonic() - began, 2)
    return status


async def run(base: str, clients: int, seconds: float, reload_at: float | None, token: str | None) -> dict[str, object]:
    texts = questions(None)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        began = time.monotonic()
        deadline = began + seconds
        tasks = [client_loop(client, f"{base}/v1/ask", texts, n, deadline, latencies, errors) for n in range(clients)]
        reload_task = (
            asyncio.create_task(reload_during(client, base, token, reload_at, deadline))
            if reload_at is not None and token
            else None
        )
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - began
        reload_status = await reload_task if reload_task is not None else None
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "qps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "reload": reload_status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--reload-at", type=float, default=None, help="start a forced reload this many seconds in")
    parser.add_argument("--admin-token", default=None)
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in LOOPBACK:
        raise SystemExit("the load test talks to loopback addresses only")
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        raise SystemExit("--clients must be 1..256 and --seconds 0..600")
    figures = asyncio.run(run(args.url.rstrip("/"), args.clients, args.seconds, args.reload_at, args.admin_token))
    print(f"{figures['requests']} requests, {figures['errors']} errors in {figures['seconds']} s with {figures['clients']} clients")
    print(f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, p99 {figures['p99_ms']} ms, {figures['qps']} q/s")
    if figures["reload"]:
        print(f"reload: {figures['reload']}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
