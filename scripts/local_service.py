"""A real `python -m bot serve` on a free loopback port, for the benchmark scripts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 180.0


@dataclass(frozen=True)
class Service:
    base: str
    pid: int

    def rss_mib(self) -> float:
        """The serving process's resident memory now."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def service(env: dict[str, str]) -> Iterator[Service]:
    """The service with these FAQBOT_* settings over the environment's; stopped on exit."""
    port = free_port()
    full = {**os.environ, "FAQBOT_PORT": str(port), "FAQBOT_HOST": "127.0.0.1", "FAQBOT_LOG_LEVEL": "WARNING", **env}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=full)
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
        yield Service(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def questions(split: str | None = "test8") -> list[str]:
    """The questions of corpus/eval.yaml, in-domain and out of scope: one split (the
    held-out one by default) or, with None, all."""
    data = yaml.safe_load((ROOT / "corpus" / "eval.yaml").read_text(encoding="utf-8"))
    items = [*data["in_domain"], *data["out_of_scope"]]
    return [item["query"] for item in items if split is None or item.get("split") == split]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
