"""Decision metrics on the corpus evaluation set (corpus/eval.yaml).

In-domain queries should be answered with their entry; out-of-scope ones should get
the fallback. Confidence is checked for calibration with a reliability table and ECE:
of the queries answered with confidence c, about c should be right.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.answer import Answerer, Reply


class Labelled(Protocol):
    """A query and the entry that should answer it (None: out of scope)."""

    @property
    def query(self) -> str: ...

    @property
    def id(self) -> str | None: ...


@dataclass(frozen=True)
class OutOfScope:
    """A query from outside the FAQ's subject, such as another FAQ's queries.json."""

    query: str
    id: None = None


@dataclass(frozen=True)
class Outcome:
    query: Labelled
    reply: Reply
    top_id: str
    latency_ms: float

    @property
    def correct(self) -> bool:
        """Answered with the right entry (in-domain), or not answered (out-of-scope)."""
        if self.query.id is None:
            return not self.reply.answered
        return self.reply.answered and self.reply.faq is not None and self.reply.faq.id == self.query.id


@dataclass
class Report:
    split: str
    in_domain: int = 0
    out_of_scope: int = 0
    top1: float = 0.0
    answered_correct: float = 0.0
    answered_wrong: float = 0.0
    not_answered: float = 0.0
    right_offered: float = 0.0
    oos_fallback: float = 0.0
    ece: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    reliability: list[tuple[str, int, float, float]] = field(default_factory=list)
    confusions: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"split: {self.split}  ({self.in_domain} in-domain, {self.out_of_scope} out-of-scope queries)"]
        if self.in_domain:
            out += [
                f"in-domain top-1 accuracy (ranking):     {self.top1:.1%}",
                f"in-domain answered with right entry:    {self.answered_correct:.1%}",
                f"in-domain answered with WRONG entry:    {self.answered_wrong:.1%}",
                f"in-domain not answered (suggest/route): {self.not_answered:.1%}",
                f"in-domain right entry answered or suggested: {self.right_offered:.1%}",
            ]
        if self.out_of_scope:
            out.append(f"out-of-scope routed to fallback:        {self.oos_fallback:.1%}")
        out += [
            f"expected calibration error (ECE):       {self.ece:.3f}",
            f"latency per query: p50 {self.latency_p50_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms",
            "reliability (confidence bin: n, mean confidence, share correct):",
        ]
        out += [f"  {b}: n={n:3d}  conf={c:.2f}  correct={a:.2f}" for b, n, c, a in self.reliability]
        out.append(f"confusions ({len(self.confusions)}):")
        out += [f"  {line}" for line in self.confusions] or ["  none"]
        return out


def run(answerer: Answerer, queries: Sequence[Labelled]) -> list[Outcome]:
    outcomes = []
    for q in queries:
        start = time.perf_counter()
        candidates = answerer.retriever.rank(q.query)
        reply = answerer.reply(candidates)
        elapsed = (time.perf_counter() - start) * 1000
        outcomes.append(Outcome(q, reply, candidates[0].entry.id, elapsed))
    return outcomes


def report(outcomes: Sequence[Outcome], split: str, bins: int = 5) -> Report:
    ind = [o for o in outcomes if o.query.id is not None]
    oos = [o for o in outcomes if o.query.id is None]
    r = Report(split=split, in_domain=len(ind), out_of_scope=len(oos))
    if ind:
        r.top1 = sum(o.top_id == o.query.id for o in ind) / len(ind)
        r.answered_correct = sum(o.correct for o in ind) / len(ind)
        r.answered_wrong = sum(o.reply.answered and not o.correct for o in ind) / len(ind)
        r.not_answered = sum(not o.reply.answered for o in ind) / len(ind)
        r.right_offered = sum(o.correct or o.query.id in {s.id for s in o.reply.suggestions} for o in ind) / len(ind)
    if oos:
        r.oos_fallback = sum(o.correct for o in oos) / len(oos)
    latencies = sorted(o.latency_ms for o in outcomes)
    if latencies:
        r.latency_p50_ms = statistics.median(latencies)
        r.latency_p95_ms = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    r.reliability, r.ece = reliability(outcomes, bins)
    for o in outcomes:
        if o.correct:
            continue
        got = o.reply.faq.id if o.reply.faq else o.reply.decision
        want = o.query.id or "fallback"
        r.confusions.append(f"{o.query.query!r}: expected {want}, got {got} (top {o.top_id}, conf {o.reply.confidence:.2f})")
    return r


def reliability(outcomes: Sequence[Outcome], bins: int) -> tuple[list[tuple[str, int, float, float]], float]:
    """Confidence that the top entry is right vs how often it is right.

    "Right" is the top entry being the labelled one; for out-of-scope queries it never is.
    """
    table = []
    ece = 0.0
    n = len(outcomes)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [o for o in outcomes if lo <= o.reply.confidence < hi or (b == bins - 1 and o.reply.confidence == 1.0)]
        if not members:
            continue
        conf = sum(o.reply.confidence for o in members) / len(members)
        acc = sum(o.query.id is not None and o.top_id == o.query.id for o in members) / len(members)
        table.append((f"[{lo:.1f}, {hi:.1f})", len(members), conf, acc))
        ece += len(members) / n * abs(conf - acc)
    return table, ece
