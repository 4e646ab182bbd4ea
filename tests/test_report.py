"""The staff report on a real SQLite log: grouping with the real model, alternates, counts, renderers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from bot.corpus import Corpus
from bot.desk import TOKYO
from bot.engine import Engine
from bot.report import (
    ReportOptions,
    build_report,
    parse_since,
    render_csv,
    render_html,
    render_markdown,
    suggested_alternates_yaml,
)
from bot.store import AskRecord, Feedback, LogRecord, Pick, SqlLogStore, SuggestionLog

T0 = dt.datetime(2024, 5, 1, 23, 30, tzinfo=TOKYO)
NOW = dt.datetime(2024, 5, 8, 12, 0, tzinfo=TOKYO)
ALL = ReportOptions(since=None)


def ask(
    ask_id: str,
    query: str,
    decision: str = "fallback",
    *,
    faq_id: str | None = None,
    confidence: float | None = None,
    suggest: Sequence[str] = (),
    at: dt.datetime = T0,
    channel: str = "web",
    user: str | None = None,
) -> AskRecord:
    """An ask as the service logs it, with plausible defaults for what a test does not care about."""
    if confidence is None:
        confidence = {"answered": 0.9, "ambiguous": 0.5}.get(decision, 0.2)
    return AskRecord(
        ask_id=ask_id,
        created_at=at,
        channel=channel,
        query=query,
        decision=decision,
        faq_id=faq_id,
        confidence=confidence,
        suggestions=tuple(SuggestionLog(s, 0.4) for s in suggest),
        latency_ms=12.0,
        user_hash=user,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlLogStore]:
    log = SqlLogStore(f"sqlite:///{tmp_path / 'log.sqlite3'}")
    yield log
    log.close()


def filled(store: SqlLogStore, records: Sequence[LogRecord]) -> SqlLogStore:
    store.write(records)
    return store


def test_near_duplicates_form_one_group_largest_first(store: SqlLogStore, engine: Engine) -> None:
    phone = engine.corpus.entries[0].id
    filled(
        store,
        [
            ask("a1", "相談窓口の電話番号を教えて", "ambiguous", suggest=[phone]),
            ask("a2", "相談窓口の電話番号を教えて", "ambiguous", suggest=[phone]),
            ask("a3", "相談窓口の電話番号を教えて　"),
            ask("a4", "相談窓口の電話番号を教えてください", "answered", faq_id=phone, confidence=0.4),
            ask("a5", "駐車場はありますか"),
            ask("a6", "相談窓口の電話番号を教えてください", "answered", faq_id=phone, confidence=0.95),
            ask("a7", "こんにちは", "smalltalk"),
        ],
    )
    report = build_report(store, engine.embedder, engine.corpus, ALL, now=NOW)
    assert report.asks == 7 and report.uncertain_asks == 5
    first, second = report.groups
    assert first.count == 4 and first.texts == 2
    assert first.examples == ("相談窓口の電話番号を教えて", "相談窓口の電話番号を教えてください")
    assert dict(first.decisions) == {"ambiguous": 2, "fallback": 1, "answered": 1}
    assert first.top_entry == phone
    assert second.count == 1 and second.examples == ("駐車場はありますか",) and second.top_entry is None

    exact = build_report(store, None, engine.corpus, ALL, now=NOW)
    assert [g.count for g in exact.groups] == [3, 1, 1] and not exact.clustered


def test_alternates_come_from_choices_after_uncertain_replies(store: SqlLogStore, corpus: Corpus) -> None:
    entry = corpus.entries[0]
    existing = entry.alternates[0]
    tricky = "夜でも: 電話できる? #急ぎ"
    filled(
        store,
        [
            ask("pick", "カスハラの線引きが知りたい", "ambiguous", suggest=[entry.id]),
            Pick("pick", entry.id, "web", T0),
            ask("low", tricky, "answered", faq_id=entry.id, confidence=0.5),
            Feedback("low", True, None, T0),
            ask("sure", "自信のある回答の質問", "answered", faq_id=entry.id, confidence=0.95),
            Feedback("sure", True, None, T0),
            ask("known", f" {existing}　", "ambiguous", suggest=[entry.id]),
            Pick("known", entry.id, "web", T0),
            ask("again", "カスハラの線引きが知りたい", "fallback"),
            Feedback("again", True, entry.id, T0),
            ask("down", "役に立たなかった質問", "ambiguous", suggest=[entry.id]),
            Feedback("down", False, entry.id, T0),
        ],
    )
    report = build_report(store, None, corpus, ALL, now=NOW)
    (proposals,) = report.alternates
    assert proposals.entry_id == entry.id
    assert [(p.text, p.seen) for p in proposals.proposals] == [("カスハラの線引きが知りたい", 2), (tricky, 1)]

    snippet = suggested_alternates_yaml(report)
    assert "自動では反映されません" in snippet and "never applied automatically" in snippet
    assert f"# {' '.join(entry.question.split())}" in snippet
    assert yaml.safe_load(snippet) == [{"id": entry.id, "alternates": ["カスハラの線引きが知りたい", tricky]}]


def test_per_entry_counts_and_ratio(store: SqlLogStore, corpus: Corpus) -> None:
    first, second, third = (e.id for e in corpus.entries[:3])
    filled(
        store,
        [
            ask("a1", "q1", "answered", faq_id=first),
            ask("a2", "q2", "answered", faq_id=first),
            ask("a3", "q3", "answered", faq_id=second),
            ask("a4", "q4", "ambiguous", suggest=[first, second]),
            Feedback("a1", True, None, T0),
            Feedback("a2", True, None, T0),
            Feedback("a3", False, first, T0),
            Pick("a4", second, "web", T0),
        ],
    )
    stats = {s.entry_id: s for s in build_report(store, None, corpus, ALL, now=NOW).entries}
    assert len(stats) == len(corpus.entries)
    assert (stats[first].answered, stats[first].helpful, stats[first].unhelpful, stats[first].picks) == (2, 2, 1, 0)
    assert stats[first].helpful_ratio == pytest.approx(2 / 3)
    assert (stats[second].answered, stats[second].helpful, stats[second].unhelpful, stats[second].picks) == (1, 0, 0, 1)
    assert stats[second].helpful_ratio is None and stats[third].answered == 0


def test_days_and_channels_in_tokyo_time(store: SqlLogStore, corpus: Corpus) -> None:
    late, early = T0, T0 + dt.timedelta(hours=1)
    filled(
        store,
        [
            ask("a1", "q", "answered", faq_id=corpus.entries[0].id, at=late, user="u1"),
            ask("a2", "q", "fallback", at=early, user="u1"),
            ask("a3", "q", "ambiguous", at=early + dt.timedelta(hours=9), channel="line", user="u2"),
            ask("a4", "q", "urgent", at=early + dt.timedelta(hours=10), channel="line"),
        ],
    )
    report = build_report(store, None, corpus, ALL, now=NOW)
    assert report.asks == 4 and report.people == 2
    assert report.decision_kinds == ("answered", "ambiguous", "fallback", "urgent")
    rows = {(d.day.isoformat(), d.channel): d for d in report.days}
    assert list(rows) == [("2024-05-01", "web"), ("2024-05-01", "all"), ("2024-05-02", "line"), ("2024-05-02", "web"), ("2024-05-02", "all")]
    assert rows[("2024-05-01", "web")].share("answered") == 1.0
    assert rows[("2024-05-02", "web")].share("fallback") == 1.0
    day = rows[("2024-05-02", "all")]
    assert day.asks == 3 and day.share("ambiguous") == pytest.approx(1 / 3) and day.share("urgent") == pytest.approx(1 / 3)

    # A bound given in UTC means the same instant: midnight in Tokyo on 2 May.
    utc = ReportOptions(since=dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC))
    assert build_report(store, None, corpus, utc, now=NOW).asks == 3


def test_renderers_escape_and_split_sections(store: SqlLogStore, engine: Engine) -> None:
    entry = engine.corpus.entries[0]
    filled(
        store,
        [
            ask("a1", "<script>alert('x')</script>", at=T0),
            ask("a2", "窓口 | 電話", "ambiguous", suggest=[entry.id], at=T0 + dt.timedelta(days=1), channel="line"),
            Pick("a2", entry.id, "line", T0 + dt.timedelta(days=1)),
            ask("a3", "=HYPERLINK(1)", at=T0 + dt.timedelta(days=2)),
        ],
    )
    report = build_report(store, engine.embedder, engine.corpus, ALL, now=NOW)

    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="ja">' in page and 'name="viewport"' in page
    assert "&lt;script&gt;" in page and "<script" not in page
    assert "<svg" in page and "<?xml" not in page and "width:100%;height:auto" in page
    assert "overflow-x:auto" in page and "src=" not in page and "@import" not in page

    markdown = render_markdown(report)
    assert "窓口 \\| 電話" in markdown and "## 日別・チャネル別" in markdown

    text = render_csv(report)
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for row in csv.reader(io.StringIO(text)):
        if current is None:
            assert len(row) == 1 and row[0].startswith("# ")
            current = sections.setdefault(row[0][2:], [])
        elif row:
            current.append(row)
        else:
            current = None
    assert list(sections) == ["summary", "unanswered_groups", "suggested_alternates", "entries", "daily_channels"]
    assert len(sections["unanswered_groups"]) == 1 + 3
    assert len(sections["entries"]) == 1 + len(engine.corpus.entries)
    assert ["'=HYPERLINK(1)"] == [row[1] for row in sections["unanswered_groups"] if "HYPERLINK" in row[1]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", dt.timedelta(days=7)), ("24h", dt.timedelta(hours=24)), ("30m", dt.timedelta(minutes=30)),
     ("2w", dt.timedelta(weeks=2)), (" 3D ", dt.timedelta(days=3))],
)
def test_parse_since_accepts(text: str, expected: dt.timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7y", "0d", "-1d", "1.5d", "7 days"])
def test_parse_since_rejects_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="e.g. 30m, 24h, 7d or 2w"):
        parse_since(text)
