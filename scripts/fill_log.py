"""Fill a query-log database with realistic rows, and time the staff report on it.

The report must stay fast on a busy desk's month of asks; this script makes such a month
without waiting for one. Queries come from corpus/eval.yaml, the FAQ alternates and
corpus/unanswered.yaml, some with small variations (a question mark, a polite ending, a
stray space, full-width letters); popular questions are asked far more often than rare
ones. Decisions, confidences and suggestions follow what the service would plausibly log;
feedback and picks follow a share of the asks. Rows go through `SqlLogStore.write` in
batches, as the service's background writer sends them. Nothing is fetched from the network.

Example:

    .venv/bin/python scripts/fill_log.py --asks 100000 --days 30 --seed 1 --time-report
    .venv/bin/python scripts/fill_log.py --database-url sqlite:///var/demo.sqlite3 --asks 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bot.corpus import Corpus, load_corpus  # noqa: E402
from bot.desk import TOKYO  # noqa: E402
from bot.embed.base import Embedder  # noqa: E402
from bot.store import AskRecord, Feedback, LogRecord, Pick, SqlLogStore, SuggestionLog  # noqa: E402
from bot.types import Matrix  # noqa: E402

CHANNELS = ("api", "web", "line", "slack")
CHANNEL_WEIGHTS = (0.1, 0.45, 0.35, 0.1)
# More asks in office hours than at night.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 8, 9, 9, 8, 7, 6, 5, 4, 3, 3, 2, 1)
SMALLTALK = ("こんにちは", "ありがとう", "ありがとうございました", "テスト", "おはようございます")
URGENT = ("今まさに客に怒鳴られていて怖い", "客に殴られそうです 助けて", "店の前で客が暴れています")
VARIATIONS: tuple[Callable[[str], str], ...] = (
    lambda q: q.rstrip("？?。") + "？",
    lambda q: q.rstrip("？?。") + "?",
    lambda q: q + "。",
    lambda q: "すみません、" + q,
    lambda q: q.replace("教えて", "教えてください", 1) if "教えてください" not in q else q,
    lambda q: q + " ",
    lambda q: "　" + q,
    lambda q: q.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}),
)


T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    text: str
    entry: str | None


def read_pool(corpus_dir: Path, corpus: Corpus) -> tuple[list[Query], list[Query]]:
    """In-domain queries with their entry, and out-of-scope ones."""
    data = yaml.safe_load((corpus_dir / "eval.yaml").read_text(encoding="utf-8"))
    inside = [Query(item["query"], item["id"]) for item in data["in_domain"]]
    inside += [Query(alt, e.id) for e in corpus.entries for alt in e.alternates]
    outside = [Query(item["query"], None) for item in data["out_of_scope"]]
    outside += [Query(u.query, None) for u in corpus.unanswered]
    return inside, outside


def zipf_weights(n: int, rng: random.Random) -> list[float]:
    """A few questions are asked very often, most rarely, as on a real desk."""
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    return [1.0 / r**0.8 for r in ranks]


class Filler:
    """Makes one ask at a time, with the feedback and pick a person might add."""

    def __init__(self, corpus: Corpus, inside: list[Query], outside: list[Query], args: argparse.Namespace) -> None:
        self.rng = random.Random(args.seed)
        self.ids = [e.id for e in corpus.entries]
        self.inside, self.outside = inside, outside
        self.inside_w = zipf_weights(len(inside), self.rng)
        self.outside_w = zipf_weights(len(outside), self.rng)
        self.users = [f"{self.rng.getrandbits(128):032x}" for _ in range(max(1, args.asks // 4))]
        self.start = dt.datetime.now(TOKYO).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=args.days)
        self.days = args.days

    def _query(self) -> tuple[str, str | None, str | None]:
        """The text, the entry it means (None when out of scope), and a forced decision kind."""
        roll = self.rng.random()
        if roll < 0.01:
            return self.rng.choice(SMALLTALK), None, "smalltalk"
        if roll < 0.015:
            return self.rng.choice(URGENT), None, "urgent"
        pool, weights = (self.inside, self.inside_w) if roll < 0.88 else (self.outside, self.outside_w)
        query = self.rng.choices(pool, weights)[0]
        text = query.text
        if self.rng.random() < 0.25:
            text = self.rng.choice(VARIATIONS)(text)
        return text, query.entry, None

    def _others(self, but: str | None, k: int) -> list[str]:
        return [i for i in self.rng.sample(self.ids, k + 1) if i != but][:k]

    def ask(self) -> list[LogRecord]:
        rng = self.rng
        text, entry, kind = self._query()
        at = self.start + dt.timedelta(
            days=rng.randrange(self.days),
            hours=rng.choices(range(24), HOUR_WEIGHTS)[0],
            seconds=rng.randrange(3600),
        )
        channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        faq_id: str | None = None
        suggestions: list[SuggestionLog] = []
        roll = rng.random()
        if kind is not None:
            decision, confidence = kind, 1.0
        elif entry is not None and roll < 0.85:
            low = rng.random() < 0.08
            decision, faq_id, confidence = "answered", entry, rng.uniform(0.55, 0.7) if low else rng.uniform(0.7, 0.99)
            suggestions = [SuggestionLog(i, round(rng.uniform(0.1, 0.4), 4)) for i in self._others(entry, 2)]
        elif roll < (0.95 if entry is not None else 0.2):
            decision, confidence = "ambiguous", rng.uniform(0.3, 0.6)
            ids = ([entry] if entry and rng.random() < 0.8 else []) + self._others(entry, 3)
            suggestions = [SuggestionLog(i, round(confidence - 0.05 * j, 4)) for j, i in enumerate(ids[:3])]
        elif entry is None and roll < 0.25:
            decision, faq_id, confidence = "answered", rng.choice(self.ids), rng.uniform(0.6, 0.8)
        else:
            decision, confidence = "fallback", rng.uniform(0.02, 0.3)
        ask_id = f"{rng.getrandbits(128):032x}"
        record = AskRecord(
            ask_id=ask_id,
            created_at=at,
            channel=channel,
            query=text,
            decision=decision,
            faq_id=faq_id,
            confidence=round(confidence, 4),
            suggestions=tuple(suggestions),
            latency_ms=round(rng.lognormvariate(3.5, 0.4), 2),
            index_built_at=self.start.isoformat(timespec="seconds"),
            user_hash=None if channel == "api" else rng.choice(self.users),
        )
        out: list[LogRecord] = [record]
        later = at + dt.timedelta(seconds=rng.randrange(5, 300))
        if decision == "ambiguous" and suggestions and rng.random() < (0.45 if entry else 0.08):
            picked = entry if entry in {s.id for s in suggestions} and rng.random() < 0.85 else suggestions[0].id
            out.append(Pick(ask_id, picked, channel, later))
            if rng.random() < 0.3:
                out.append(Feedback(ask_id, picked == entry, picked, later))
        elif decision == "answered" and rng.random() < 0.1:
            out.append(Feedback(ask_id, faq_id == entry and rng.random() < 0.85, faq_id, later))
        elif decision == "fallback" and rng.random() < 0.03:
            out.append(Feedback(ask_id, rng.random() < 0.3, None, later))
        return out


def fill(store: SqlLogStore, filler: Filler, asks: int, batch: int) -> int:
    """Write `asks` asks with their feedback and picks; the number of records written."""
    written = 0
    pending: list[LogRecord] = []
    for _ in range(asks):
        pending += filler.ask()
        if len(pending) >= batch:
            store.write(pending)
            written += len(pending)
            pending = []
    if pending:
        store.write(pending)
        written += len(pending)
    return written


class TimedEmbedder:
    """The real embedder, timing `embed_queries` so the report's embedding cost is visible."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.texts = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def fingerprint(self) -> dict[str, object]:
        return self.inner.fingerprint()

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        started = time.perf_counter()
        try:
            return self.inner.embed_queries(texts)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self.inner.embed_passages(texts)


def load_model() -> tuple[Embedder, Corpus]:
    """The service's own model (the index's adapted copy), or the base model without an index."""
    from bot.config import Settings
    from bot.engine import load_embedder, load_engine

    settings = Settings()
    try:
        engine = load_engine(settings)
        print(f"model: the index's model in {settings.index_dir}")
        return engine.embedder, engine.corpus
    except Exception as exc:  # a missing or stale index; the base model still shows the cost
        print(f"cannot load the engine ({type(exc).__name__}: {exc}); using the base model {settings.model}")
        print("note: the timings hold, but the base model's cosines run higher, so groups at 0.88 are far too coarse")
        return load_embedder(settings), load_corpus(settings.corpus_dir)


def step(name: str, run: Callable[[], T]) -> T:
    """Run one step and print its wall time."""
    started = time.perf_counter()
    result = run()
    print(f"{name:<28}{time.perf_counter() - started:8.2f} s")
    return result


def time_report(store: SqlLogStore) -> None:
    from bot import report

    embedder, corpus = step("load model", load_model)
    timed = TimedEmbedder(embedder)
    options = report.ReportOptions(since=None)
    built = step("build_report", lambda: report.build_report(store, timed, corpus, options))
    print(f"{'  of which embedding':<28}{timed.seconds:8.2f} s ({timed.texts} texts)")
    step("build_report, no embedder", lambda: report.build_report(store, None, corpus, options))
    renderers: list[tuple[str, Callable[[report.Report], str]]] = [
        *report.RENDERERS.items(),
        ("alternates yaml", report.suggested_alternates_yaml),
    ]
    for name, render in renderers:
        text = step(f"render {name}", partial(render, built))
        print(f"{'':<28}{len(text):8d} chars")
    print(
        f"asks {built.asks}, people {built.people}, uncertain asks {built.uncertain_asks}, "
        f"distinct texts {built.uncertain_texts}, groups {built.groups_total}, "
        f"entries with proposed alternates {len(built.alternates)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a new SQLite file in a temp folder)")
    parser.add_argument("--asks", type=int, default=100_000, help="how many asks to write (default 100000)")
    parser.add_argument("--days", type=int, default=30, help="spread them over this many days up to now (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed, for the same rows on every run")
    parser.add_argument("--batch", type=int, default=5000, help="records per write (default 5000)")
    parser.add_argument("--corpus-dir", type=Path, default=Path("corpus"), help="where faq.yaml and eval.yaml are")
    parser.add_argument("--time-report", action="store_true", help="then time build_report and each renderer")
    args = parser.parse_args(argv)
    if args.asks < 1 or args.days < 1 or args.batch < 1:
        parser.error("--asks, --days and --batch must be at least 1")
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='faqbot-log-')) / 'log.sqlite3'}"
    corpus = load_corpus(args.corpus_dir)
    inside, outside = read_pool(args.corpus_dir, corpus)
    store = SqlLogStore(url)
    try:
        started = time.perf_counter()
        written = fill(store, Filler(corpus, inside, outside, args), args.asks, args.batch)
        print(f"wrote {args.asks} asks ({written} records) to {url} in {time.perf_counter() - started:.1f} s")
        if args.time_report:
            time_report(store)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
