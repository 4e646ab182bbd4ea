"""The decision report, on hand-made outcomes whose figures can be counted by hand."""

from __future__ import annotations

from bot.answer import FaqRef, Reply, Suggestion
from bot.corpus import EvalQuery
from bot.evaluate import Outcome, OutOfScope, report


def _reply(answered_id: str | None, suggested: tuple[str, ...] = (), confidence: float = 0.9) -> Reply:
    return Reply(
        ask_id="x",
        answered=answered_id is not None,
        decision="answered" if answered_id else ("ambiguous" if suggested else "fallback"),
        answer="…",
        faq=FaqRef(id=answered_id, question="…", category="…") if answered_id else None,
        confidence=confidence,
        suggestions=[Suggestion(id=s, question="…", category="…", confidence=0.5) for s in suggested],
        route=None,
    )


def _outcome(want: str | None, reply: Reply, top: str) -> Outcome:
    query = EvalQuery(query="q", id=want, split="test") if want else OutOfScope("q")
    return Outcome(query, reply, top, 1.0)


def test_report_counts_each_kind_of_outcome() -> None:
    outcomes = [
        _outcome("a", _reply("a"), "a"),  # answered right
        _outcome("a", _reply("b", suggested=("a",)), "b"),  # answered wrong, right one suggested
        _outcome("b", _reply(None, suggested=("c", "b"), confidence=0.5), "c"),  # not answered, suggested
        _outcome("c", _reply(None, confidence=0.1), "a"),  # not answered, not offered
        _outcome(None, _reply(None, confidence=0.1), "a"),  # out of scope, routed
        _outcome(None, _reply("a"), "a"),  # out of scope, answered
    ]
    r = report(outcomes, "hand")
    assert (r.in_domain, r.out_of_scope) == (4, 2)
    assert r.answered_correct == 0.25 and r.answered_wrong == 0.25 and r.not_answered == 0.5
    assert r.right_offered == 0.75
    assert r.oos_fallback == 0.5
    assert len(r.confusions) == 4


def test_a_report_of_out_of_scope_queries_only_leaves_out_the_in_domain_lines() -> None:
    r = report([Outcome(OutOfScope("明日の天気は"), _reply(None, confidence=0.1), "a", 1.0)], "other.json")
    text = "\n".join(r.lines())
    assert "(0 in-domain, 1 out-of-scope queries)" in text and "routed to fallback:        100.0%" in text
    assert "in-domain" not in text.split("queries)", 1)[1]
