"""Metrics on corpus/eval_reach.yaml: other languages and scripts, styles, small talk, safety.

Every item goes through the whole query path (`Answerer.ask`, triage included), as a
person's message would. In-domain items are right when answered with their entry, wrong
when answered with another, routed otherwise; out-of-scope items must not be answered.
Urgent and crisis items must come back urgent, with the right numbers; everything else
that comes back urgent is a false alarm. Small-talk items must be recognized, and a
small-talk phrase around an FAQ question must not shadow the question.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.answer import Answerer, Reply
from bot.corpus import Corpus, ReachSplit, Strict, Text, read_yaml, validate
from bot.errors import CorpusError

REACH_FILE = "eval_reach.yaml"
LABELS = ("out_of_scope", "smalltalk", "urgent", "crisis")


class ReachItem(Strict):
    query: Text
    expect: Text
    style: Text
    language: Text
    split: ReachSplit


def load_reach_set(folder: Path, corpus: Corpus) -> tuple[ReachItem, ...]:
    path = Path(folder) / REACH_FILE
    raw = read_yaml(path, required=True).get("items")
    if not isinstance(raw, list):
        raise CorpusError(f"{path}: 'items' must be a list")
    known = {e.id for e in corpus.entries}
    items = []
    for i, item in enumerate(raw, start=1):
        parsed = validate(ReachItem, item, f"{path}: item {i}")
        if parsed.expect not in known and parsed.expect not in LABELS:
            raise CorpusError(f"{path}: item {i}: field 'expect': {parsed.expect!r} is neither an entry id nor one of {LABELS}")
        items.append(parsed)
    return tuple(items)


@dataclass(frozen=True)
class ReachOutcome:
    item: ReachItem
    reply: Reply
    latency_ms: float
    crisis_phone: str

    @property
    def outcome(self) -> str:
        """right, wrong or routed for an FAQ question or an out-of-scope one; urgent, crisis
        or missed for danger; recognized or missed for small talk."""
        expect, reply = self.item.expect, self.reply
        if expect in ("urgent", "crisis"):
            if reply.decision != "urgent" or reply.route is None:
                return "missed"
            return "crisis" if reply.route.phone == self.crisis_phone else "urgent"
        if expect == "smalltalk":
            return "recognized" if reply.decision == "smalltalk" else "missed"
        if expect == "out_of_scope":
            return "wrong" if reply.answered else "routed"
        if reply.answered:
            return "right" if reply.faq is not None and reply.faq.id == expect else "wrong"
        return "routed"

    @property
    def right(self) -> bool:
        kind = self.outcome
        if self.item.expect in ("urgent", "crisis"):
            return kind == self.item.expect
        if self.item.expect == "out_of_scope":
            return kind == "routed" and self.reply.decision != "urgent"
        return kind in ("right", "recognized")


def run_reach(answerer: Answerer, items: Sequence[ReachItem]) -> list[ReachOutcome]:
    crisis_phone = answerer.triage.safety.file.crisis.numbers[0].number if answerer.triage else ""
    outcomes = []
    for item in items:
        start = time.perf_counter()
        reply = answerer.ask(item.query)
        outcomes.append(ReachOutcome(item, reply, (time.perf_counter() - start) * 1000, crisis_phone))
    return outcomes


def report_lines(outcomes: Sequence[ReachOutcome], title: str) -> list[str]:
    lines = [f"{title}: {len(outcomes)} messages"]
    by_style: dict[str, list[ReachOutcome]] = defaultdict(list)
    for o in outcomes:
        by_style[o.item.style].append(o)
    lines.append(f"{'style':<24} {'n':>4} {'right':>7} {'wrong':>7} {'routed':>7}  other")
    for style, members in sorted(by_style.items()):
        counts = Counter(o.outcome for o in members)
        n = len(members)
        other = {k: v for k, v in counts.items() if k not in ("right", "wrong", "routed")}
        if members[0].item.expect == "out_of_scope" or all(o.item.expect == "out_of_scope" for o in members):
            right = sum(o.right for o in members)
            lines.append(f"{style:<24} {n:>4} {right / n:>7.1%} {counts['wrong'] / n:>7.1%} {'':>7}  routed = right")
            continue
        lines.append(
            f"{style:<24} {n:>4} {counts['right'] / n:>7.1%} {counts['wrong'] / n:>7.1%} {counts['routed'] / n:>7.1%}  "
            + " ".join(f"{k}={v}" for k, v in sorted(other.items()))
        )
    in_domain = [o for o in outcomes if o.item.expect not in LABELS]
    if in_domain:
        right = sum(o.outcome == "right" for o in in_domain)
        wrong = sum(o.outcome == "wrong" for o in in_domain)
        lines.append(f"all in-domain: {right}/{len(in_domain)} right ({right / len(in_domain):.1%}), {wrong} wrong ({wrong / len(in_domain):.1%})")
    oos = [o for o in outcomes if o.item.expect == "out_of_scope"]
    if oos:
        routed = sum(o.right for o in oos)
        lines.append(f"out of scope routed: {routed}/{len(oos)} ({routed / len(oos):.1%})")
    for kind in ("urgent", "crisis"):
        members = [o for o in outcomes if o.item.expect == kind]
        if members:
            hit = sum(o.right for o in members)
            lines.append(f"{kind} recall: {hit}/{len(members)} ({hit / len(members):.1%})")
    calm = [o for o in outcomes if o.item.style == "not_urgent"]
    if calm:
        alarms = [o for o in calm if o.reply.decision == "urgent"]
        lines.append(f"false alarms on non-urgent narratives: {len(alarms)}/{len(calm)} ({len(alarms) / len(calm):.1%})")
    others = [o for o in outcomes if o.item.expect not in ("urgent", "crisis") and o.item.style != "not_urgent"]
    other_alarms = [o for o in others if o.reply.decision == "urgent"]
    lines.append(f"false alarms on all other messages: {len(other_alarms)}/{len(others)}")
    talk = [o for o in outcomes if o.item.expect == "smalltalk"]
    if talk:
        hit = sum(o.right for o in talk)
        lines.append(f"small talk recognized: {hit}/{len(talk)} ({hit / len(talk):.1%})")
    shadowed = [o for o in outcomes if o.item.expect not in LABELS and o.reply.decision == "smalltalk"]
    lines.append(f"FAQ questions shadowed by small talk: {len(shadowed)}")
    latencies = [o.latency_ms for o in outcomes]
    if latencies:
        lines.append(f"latency p50 {statistics.median(latencies):.1f} ms")
    lines.append("misses:")
    for o in outcomes:
        if not o.right:
            got = o.reply.faq.id if o.reply.faq else o.reply.decision
            lines.append(f"  [{o.item.style}] {o.item.query!r}: expected {o.item.expect}, got {got} ({o.reply.confidence:.2f})")
    return lines
