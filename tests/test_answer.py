"""Decision logic on hand-made candidates (pure logic; the real path is in test_api)."""

from bot.answer import Answerer, Calibration, DecisionPolicy, candidate_confidences, decide
from bot.corpus import Contacts, Entry
from bot.desk import Desk
from bot.retrieve import Candidate

CAL = Calibration(weights=(4.0, 20.0, 0.0, 2.0, 0.0, 0.0), bias=-5.0)
POLICY = DecisionPolicy(answer_threshold=0.7, suggest_threshold=0.2, max_suggestions=3)


def cand(entry_id: str, score: float, coverage: float = 0.5) -> Candidate:
    entry = Entry(id=entry_id, category="総合相談窓口", question=f"{entry_id}?", answer=f"{entry_id}.")
    return Candidate(entry=entry, score=score, question=score, answer=score, lexical=0.0, reading=0.0, coverage=coverage)


def test_confidence_grows_with_score_and_margin() -> None:
    clear = candidate_confidences([cand("a", 1.2), cand("b", 0.9)], CAL)[0]
    close = candidate_confidences([cand("a", 1.2), cand("b", 1.19)], CAL)[0]
    weak = candidate_confidences([cand("a", 0.6), cand("b", 0.3)], CAL)[0]
    assert clear > close and clear > weak
    assert all(0.0 < c < 1.0 for c in (clear, close, weak))


def test_thresholds_split_the_three_decisions() -> None:
    assert decide([0.9], POLICY) == "answered"
    assert decide([0.5], POLICY) == "ambiguous"
    assert decide([0.1], POLICY) == "fallback"
    assert decide([], POLICY) == "fallback"


def test_runner_ups_get_margins_against_the_top() -> None:
    confs = candidate_confidences([cand("a", 1.2), cand("b", 1.1), cand("c", 0.5)], CAL)
    assert confs[0] > confs[1] > confs[2]


def test_reply_never_guesses_below_the_threshold() -> None:
    answerer = Answerer(retriever=None, desk=Desk(Contacts()), calibration=CAL, policy=POLICY)  # type: ignore[arg-type]
    reply = answerer.reply([cand("a", 1.0), cand("b", 0.99), cand("c", 0.98)])
    assert reply.answered is False and reply.faq is None and reply.route is not None
    assert reply.decision == "ambiguous" and [s.id for s in reply.suggestions][:1] == ["a"]
    fallback = answerer.reply([cand("a", 0.2, 0.0), cand("b", 0.1, 0.0)])
    assert fallback.decision == "fallback" and fallback.suggestions == []
    answered = answerer.reply([cand("a", 1.5, 1.0), cand("b", 0.9)])
    assert answered.answered is True and answered.faq is not None and answered.faq.id == "a"
