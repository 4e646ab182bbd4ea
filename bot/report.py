"""The staff report: what people ask that the FAQ does not answer well, and how each entry does.

The desk staff read it to improve the FAQ, so it works on the query log as stored (queries
already masked by `bot.privacy`) and says what to do next: which questions to add, which
ways of asking to add as alternates, which entries people find unhelpful. Unanswered
queries are grouped so that one question typed a hundred slightly different ways counts
once and leads the list. Rendering (Markdown, CSV, HTML, the YAML snippet) is in
`bot.report_render`; this module gathers the figures.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.corpus import Corpus
from bot.desk import TOKYO
from bot.embed.base import Embedder
from bot.report_render import (
    render_csv,
    render_html,
    render_markdown,
    suggested_alternates_yaml,
)
from bot.store import AskRecord, LogStore, now_tokyo
from bot.text import normalize
from bot.types import EntryId, Matrix

__all__ = [
    "RENDERERS",
    "AlternateProposal",
    "DayChannel",
    "EntryAlternates",
    "EntryStats",
    "QueryGroup",
    "Report",
    "ReportOptions",
    "build_report",
    "parse_since",
    "render_csv",
    "render_html",
    "render_markdown",
    "suggested_alternates_yaml",
]

ANSWERED = "answered"
# Greetings are answered by design; they say nothing about gaps in the FAQ.
NOT_GAPS = frozenset({"smalltalk"})
# The per-day columns start with these, in this order; other kinds follow alphabetically.
KNOWN_KINDS = ("answered", "ambiguous", "fallback")
ALL_CHANNELS = "all"
EMBED_BATCH = 256
_CLUSTER_BLOCK = 512
_PERIOD = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class ReportOptions:
    """What the report covers and how strict it is; the defaults suit a weekly read."""

    since: dt.datetime | None
    low_confidence: float = 0.7
    cluster_similarity: float = 0.88
    max_groups: int = 50
    examples_per_group: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_confidence <= 1.0:
            raise ValueError(f"low_confidence must be between 0 and 1, not {self.low_confidence}")
        if not 0.0 < self.cluster_similarity <= 1.0:
            raise ValueError(f"cluster_similarity must be above 0 and at most 1, not {self.cluster_similarity}")
        if self.max_groups < 1 or self.examples_per_group < 1:
            raise ValueError("max_groups and examples_per_group must be at least 1")


@dataclass(frozen=True)
class QueryGroup:
    """Near-duplicate unanswered or low-confidence queries, counted once as one question."""

    count: int
    examples: tuple[str, ...]
    texts: int
    decisions: tuple[tuple[str, int], ...]
    top_entry: EntryId | None
    top_question: str | None
    last_seen: dt.datetime


@dataclass(frozen=True)
class AlternateProposal:
    text: str
    seen: int


@dataclass(frozen=True)
class EntryAlternates:
    """Ways of asking that led people to an entry only after an uncertain reply."""

    entry_id: EntryId
    question: str
    proposals: tuple[AlternateProposal, ...]

    @property
    def seen(self) -> int:
        return sum(p.seen for p in self.proposals)


@dataclass(frozen=True)
class EntryStats:
    entry_id: EntryId
    category: str
    question: str
    answered: int
    helpful: int
    unhelpful: int
    picks: int

    @property
    def helpful_ratio(self) -> float | None:
        """Share of 👍 among the votes; None without votes, so "no votes" never reads as 0%."""
        votes = self.helpful + self.unhelpful
        return None if votes == 0 else self.helpful / votes


@dataclass(frozen=True)
class DayChannel:
    """Asks on one Tokyo date through one channel (`ALL_CHANNELS` for the day's total)."""

    day: dt.date
    channel: str
    asks: int
    decisions: dict[str, int]

    def share(self, kind: str) -> float:
        return self.decisions.get(kind, 0) / self.asks if self.asks else 0.0


@dataclass(frozen=True)
class Report:
    """Every section of one report; `start` is the `since` bound, or the first ask without one.
    `groups` holds the largest `max_groups` of `groups_total`."""

    start: dt.datetime | None
    end: dt.datetime
    asks: int
    people: int
    options: ReportOptions
    clustered: bool
    uncertain_asks: int
    uncertain_texts: int
    groups_total: int
    groups: tuple[QueryGroup, ...]
    alternates: tuple[EntryAlternates, ...]
    entries: tuple[EntryStats, ...]
    decision_kinds: tuple[str, ...]
    days: tuple[DayChannel, ...]


def parse_since(text: str) -> dt.timedelta:
    """A look-back period as staff type it: "30m", "24h", "7d", "2w"."""
    match = _PERIOD.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"cannot read {text!r} as a period: write a positive number and a unit, "
            "m (minutes), h (hours), d (days) or w (weeks), e.g. 30m, 24h, 7d or 2w"
        )
    return dt.timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


@dataclass
class _Text:
    """One folded query text among the uncertain asks, with what was seen with it."""

    count: int = 0
    raw: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    tops: Counter[str] = field(default_factory=Counter)
    last_seen: dt.datetime | None = None

    def add(self, ask: AskRecord, top: EntryId | None) -> None:
        self.count += 1
        self.raw[ask.query] += 1
        self.decisions[ask.decision] += 1
        if top is not None:
            self.tops[top] += 1
        if self.last_seen is None or ask.created_at > self.last_seen:
            self.last_seen = ask.created_at

    def shown(self) -> str:
        return self.raw.most_common(1)[0][0]


@dataclass(frozen=True)
class _AskInfo:
    decision: str
    faq_id: EntryId | None
    confidence: float
    query: str
    masked: bool


def fold(text: str) -> str:
    """The form in which two queries count as the same text: NFKC, single spaces, lower case."""
    return normalize(text)


def _uncertain(decision: str, confidence: float, options: ReportOptions) -> bool:
    if decision == ANSWERED:
        return confidence < options.low_confidence
    return decision not in NOT_GAPS


def build_report(
    store: LogStore,
    embedder: Embedder | None,
    corpus: Corpus,
    options: ReportOptions,
    now: dt.datetime | None = None,
) -> Report:
    """Read the log once and gather every section.

    Asks after `now` are left out, so a report for a past moment is reproducible. With
    `embedder=None` unanswered queries are grouped by exact (folded) text only, which
    needs no model but counts each way of asking separately."""
    end = (now or now_tokyo()).astimezone(TOKYO)
    since = None if options.since is None else _as_tokyo(options.since)
    feedback = [f for f in store.feedback_since(since) if f.created_at <= end]
    picks = [p for p in store.picks_since(since) if p.created_at <= end]
    referenced = {f.ask_id for f in feedback} | {p.ask_id for p in picks}

    infos: dict[str, _AskInfo] = {}
    texts: dict[str, _Text] = {}
    days: Counter[tuple[dt.date, str, str]] = Counter()
    answered: Counter[str] = Counter()
    people: set[str] = set()
    total = uncertain = 0
    first: dt.datetime | None = None
    for ask in store.asks_since(since):
        if ask.created_at > end:
            continue
        total += 1
        first = first or ask.created_at
        if ask.user_hash:
            people.add(ask.user_hash)
        days[(ask.created_at.astimezone(TOKYO).date(), ask.channel, ask.decision)] += 1
        if ask.decision == ANSWERED and ask.faq_id is not None:
            answered[ask.faq_id] += 1
        if ask.ask_id in referenced:
            infos[ask.ask_id] = _AskInfo(ask.decision, ask.faq_id, ask.confidence, ask.query, bool(ask.masked))
        if _uncertain(ask.decision, ask.confidence, options):
            uncertain += 1
            top = ask.faq_id or (ask.suggestions[0].id if ask.suggestions else None)
            texts.setdefault(fold(ask.query), _Text()).add(ask, top)

    groups = _group(texts, embedder, corpus, options)
    helpful: Counter[str] = Counter()
    unhelpful: Counter[str] = Counter()
    proposed: dict[EntryId, dict[str, str]] = {}
    for f in feedback:
        info = infos.get(f.ask_id)
        entry = f.faq_id or (info.faq_id if info else None)
        if entry is None:
            continue
        (helpful if f.helpful else unhelpful)[entry] += 1
        if f.helpful and info is not None and _proposable(info, options, named=f.faq_id is not None):
            proposed.setdefault(entry, {})[f.ask_id] = info.query
    for p in picks:
        info = infos.get(p.ask_id)
        if info is not None and _proposable(info, options, named=True):
            proposed.setdefault(p.faq_id, {})[p.ask_id] = info.query
    picked = Counter(p.faq_id for p in picks)

    decision_kinds = KNOWN_KINDS + tuple(sorted({k for _, _, k in days} - set(KNOWN_KINDS)))
    return Report(
        start=since if since is not None else first,
        end=end,
        asks=total,
        people=len(people),
        options=options,
        clustered=embedder is not None,
        uncertain_asks=uncertain,
        uncertain_texts=len(texts),
        groups_total=len(groups),
        groups=tuple(groups[: options.max_groups]),
        alternates=_alternates(proposed, corpus),
        entries=tuple(
            EntryStats(e.id, e.category, e.question, answered[e.id], helpful[e.id], unhelpful[e.id], picked[e.id])
            for e in corpus.entries
        ),
        decision_kinds=decision_kinds,
        days=_day_rows(days),
    )


def _as_tokyo(value: dt.datetime) -> dt.datetime:
    # SQLite keeps Tokyo wall-clock times, so a bound in another zone must be converted first.
    return value.replace(tzinfo=TOKYO) if value.tzinfo is None else value.astimezone(TOKYO)


def _proposable(info: _AskInfo, options: ReportOptions, *, named: bool) -> bool:
    """Whether the person's choice after this reply says their words belong to the entry:
    the reply was uncertain (an entry named after a non-answer, or a low-confidence answer),
    and the query carries no masked personal data, whose placeholders make poor alternates."""
    if info.masked or info.decision in NOT_GAPS:
        return False
    if info.decision == ANSWERED:
        return info.confidence < options.low_confidence
    return named


def _group(
    texts: dict[str, _Text], embedder: Embedder | None, corpus: Corpus, options: ReportOptions
) -> list[QueryGroup]:
    """Exact duplicates first (cheap), then near-duplicates by embedding only the unique texts."""
    keys = sorted(texts, key=lambda k: (-texts[k].count, k))
    if embedder is None or len(keys) < 2:
        members = [[k] for k in keys]
    else:
        vectors = np.vstack(
            [embedder.embed_queries(keys[i : i + EMBED_BATCH]) for i in range(0, len(keys), EMBED_BATCH)]
        ).astype(np.float32, copy=False)
        members = [[keys[i] for i in group] for group in _cluster(vectors, options.cluster_similarity)]
    questions = {e.id: e.question for e in corpus.entries}
    groups = [_summary([texts[k] for k in m], questions, options) for m in members]
    groups.sort(key=lambda g: (-g.count, -g.last_seen.timestamp()))
    return groups


def _cluster(vectors: Matrix, threshold: float) -> list[list[int]]:
    """Greedy leader clustering in the given order: a row joins the first group whose leader
    is at least `threshold` similar, else leads a new group. Rows are compared with the
    earlier leaders a block at a time, so the work is matrix products, not a Python loop
    over leaders."""
    groups: list[list[int]] = []
    leaders = np.zeros((0, vectors.shape[1]), dtype=np.float32)
    for start in range(0, len(vectors), _CLUSTER_BLOCK):
        block = vectors[start : start + _CLUSTER_BLOCK]
        known = block @ leaders.T >= threshold
        new: list[int] = []
        for offset, row in enumerate(block):
            if known.shape[1] and known[offset].any():
                groups[int(known[offset].argmax())].append(start + offset)
                continue
            if new:
                close = vectors[new] @ row >= threshold
                if close.any():
                    groups[len(leaders) + int(close.argmax())].append(start + offset)
                    continue
            new.append(start + offset)
            groups.append([start + offset])
        if new:
            leaders = np.vstack([leaders, vectors[new]])
    return groups


def _summary(members: Sequence[_Text], questions: dict[str, str], options: ReportOptions) -> QueryGroup:
    decisions: Counter[str] = Counter()
    tops: Counter[str] = Counter()
    for t in members:
        decisions.update(t.decisions)
        tops.update(t.tops)
    top = tops.most_common(1)[0][0] if tops else None
    return QueryGroup(
        count=sum(t.count for t in members),
        examples=tuple(t.shown() for t in members[: options.examples_per_group]),
        texts=len(members),
        decisions=tuple(decisions.most_common()),
        top_entry=top,
        top_question=questions.get(top) if top else None,
        last_seen=max(t.last_seen for t in members if t.last_seen is not None),
    )


def _alternates(proposed: dict[EntryId, dict[str, str]], corpus: Corpus) -> tuple[EntryAlternates, ...]:
    """Count each proposed way of asking once per ask, dropping what the entry already has."""
    out: list[EntryAlternates] = []
    for entry in corpus.entries:
        by_ask = proposed.get(entry.id)
        if not by_ask:
            continue
        existing = {fold(entry.question), *(fold(a) for a in entry.alternates)}
        seen: Counter[str] = Counter()
        raw: dict[str, Counter[str]] = {}
        for query in by_ask.values():
            key = fold(query)
            if key and key not in existing:
                seen[key] += 1
                raw.setdefault(key, Counter())[" ".join(query.split())] += 1
        if seen:
            ranked = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))
            proposals = tuple(AlternateProposal(raw[k].most_common(1)[0][0], n) for k, n in ranked)
            out.append(EntryAlternates(entry.id, entry.question, proposals))
    out.sort(key=lambda e: -e.seen)
    return tuple(out)


def _day_rows(days: Counter[tuple[dt.date, str, str]]) -> tuple[DayChannel, ...]:
    per: dict[tuple[dt.date, str], dict[str, int]] = {}
    for (day, channel, kind), n in days.items():
        for key in ((day, channel), (day, ALL_CHANNELS)):
            counts = per.setdefault(key, {})
            counts[kind] = counts.get(kind, 0) + n
    order = sorted(per, key=lambda k: (k[0], k[1] == ALL_CHANNELS, k[1]))
    return tuple(DayChannel(d, c, sum(per[(d, c)].values()), per[(d, c)]) for d, c in order)


RENDERERS = {"md": render_markdown, "csv": render_csv, "html": render_html}
