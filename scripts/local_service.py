"""A real `python -m bot serve` on a free loopback port, for the benchmark scripts."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.bench import Server, percentile, serving

__all__ = ["Service", "percentile", "questions", "service"]

ROOT = Path(__file__).resolve().parent.parent


# The benchmark's own server harness: a real `bot serve` on a free loopback port.
Service = Server
service = serving


def questions(split: str | None = "test8") -> list[str]:
    """The questions of corpus/eval.yaml, in-domain and out of scope: one split (the
    held-out one by default) or, with None, all."""
    data = yaml.safe_load((ROOT / "corpus" / "eval.yaml").read_text(encoding="utf-8"))
    items = [*data["in_domain"], *data["out_of_scope"]]
    return [item["query"] for item in items if split is None or item.get("split") == split]
