"""Turn ranked candidates into a decision: answered, ambiguous or fallback.

The confidence is a logistic model over retrieval features, fitted on the tune split
of corpus/eval.yaml and other subjects' questions as out-of-scope examples
(scripts/tune_decision.py) so that it reads as the probability that the top entry is
the right answer. Below the answer threshold the bot does not
guess: it offers suggestions when some are plausible, and always gives the route to
the desk.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from bot.corpus import Entry
from bot.desk import Desk, Route
from bot.language import detect_language
from bot.privacy import mask, strip_placeholders
from bot.retrieve import Candidate, Retriever
from bot.triage import SMALLTALK_MAX_CHARS, SafetyMessage, Triage, Urgency

Decision = Literal["answered", "ambiguous", "fallback", "smalltalk", "urgent"]

AMBIGUOUS_MESSAGE = (
    "ご質問にぴったり合う回答が見つかりませんでした。"
    "次のご質問のいずれかに近いでしょうか。該当しない場合は、窓口へご相談ください。"
)
FALLBACK_MESSAGE = "申し訳ありません。このご質問には、こちらのよくあるご質問ではお答えできません。"
PERSONAL_DATA_NOTICE = (
    "お名前・電話番号・メールアドレス・住所などの個人情報は、こちらには書き込まないでください。"
    "詳しいご相談は相談フォームからお寄せください。"
)
EMERGENCY_HOURS = "24時間365日"


class FaqRef(BaseModel):
    id: str
    question: str
    category: str


class Suggestion(FaqRef):
    confidence: float


class Reply(BaseModel):
    """The answer to one query, exactly what the API returns."""

    ask_id: str
    answered: bool
    decision: Decision
    answer: str
    faq: FaqRef | None
    confidence: float
    suggestions: list[Suggestion]
    route: Route | None
    notice: str | None = Field(None, description="a request not to send personal data here, when the message held some")
    language: str = Field("ja", description="the message's language, BCP 47")


@dataclass(frozen=True)
class Calibration:
    """Logistic model: confidence = sigmoid(bias + sum(w * feature))."""

    weights: tuple[float, float, float, float, float, float]
    bias: float

    @staticmethod
    def features(candidate: Candidate, runner_up_score: float) -> tuple[float, float, float, float, float, float]:
        """Fused score, margin over the best other entry, dense question score, coverage,
        the raw reading BM25 (it grows with how much of the entry a long query restates,
        where the question similarity and coverage of long queries stay low), and the
        similarity to a known unanswered question: near-domain questions the FAQ does not
        answer look like the FAQ's own on every other feature."""
        return (
            candidate.score,
            candidate.score - runner_up_score,
            candidate.question,
            candidate.coverage,
            candidate.reading,
            candidate.unanswered,
        )

    def confidence(self, candidate: Candidate, runner_up_score: float) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, self.features(candidate, runner_up_score)))
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


@dataclass(frozen=True)
class DecisionPolicy:
    answer_threshold: float
    suggest_threshold: float
    max_suggestions: int


def candidate_confidences(candidates: Sequence[Candidate], calibration: Calibration) -> list[float]:
    """Each candidate's confidence, its margin taken over the best *other* entry."""
    if not candidates:
        return []
    if len(candidates) == 1:
        return [calibration.confidence(candidates[0], 0.0)]
    best, second = candidates[0].score, candidates[1].score
    return [calibration.confidence(c, second if i == 0 else best) for i, c in enumerate(candidates)]


def decide(confidences: Sequence[float], policy: DecisionPolicy) -> Decision:
    if confidences and confidences[0] >= policy.answer_threshold:
        return "answered"
    if confidences and confidences[0] >= policy.suggest_threshold:
        return "ambiguous"
    return "fallback"


class Answerer:
    """The whole query path: triage, rank, calibrate, decide, and build the reply."""

    def __init__(
        self,
        retriever: Retriever,
        desk: Desk,
        calibration: Calibration,
        policy: DecisionPolicy,
        triage: Triage | None = None,
        smalltalk_similarity: float = 1.0,
        other_languages: Calibration | None = None,
    ) -> None:
        self.retriever = retriever
        self.desk = desk
        self.calibration = calibration
        self.policy = policy
        self.triage = triage
        self.smalltalk_similarity = smalltalk_similarity
        self.other_languages = other_languages or calibration

    def calibration_for(self, language: str) -> Calibration:
        """Japanese, romaji included, shares words with the FAQ; other languages only meaning."""
        return self.calibration if language == "ja" else self.other_languages

    def ask(self, query: str, now: dt.datetime | None = None) -> Reply:
        language = detect_language(query)
        masked = mask(query)
        notice = PERSONAL_DATA_NOTICE if masked.kinds else None
        if masked.kinds:
            # A phone number or a name says nothing about the question: rank without them.
            query = strip_placeholders(masked.text) or query
        if self.triage is None:
            return self.reply(self.retriever.rank(query), now).model_copy(update={"language": language})
        to_rank, intent = self.triage.smalltalk.split(query)
        if intent is not None and self.triage.safety.alarming(query):
            to_rank, intent = query, None
        if intent is not None:
            return self._smalltalk(intent, language, notice)
        ranking = self.retriever.ranking(to_rank)
        vectors = (ranking.base_vectors if ranking.base_vectors is not None else ranking.vectors)[:1]
        urgency = self.triage.safety.assess(query, vectors)
        if urgency is not None:
            return self._urgent(urgency, language, notice, now)
        reply = self.reply(ranking.candidates, now, self.calibration_for(language))
        if reply.decision != "answered" and len(query.strip()) <= SMALLTALK_MAX_CHARS:
            nearest, similarity = self.triage.smalltalk.nearest(vectors)
            if similarity >= self.smalltalk_similarity:
                return self._smalltalk(nearest, language, notice)
        note = self.triage.languages.note(language)
        answer = f"{note}\n{reply.answer}" if note else reply.answer
        return reply.model_copy(update={"answer": answer, "notice": notice, "language": language})

    def _smalltalk(self, intent: int, language: str, notice: str | None) -> Reply:
        assert self.triage is not None
        return _triaged("smalltalk", self.triage.smalltalk.reply(intent, language), None, notice, language)

    def _urgent(self, urgency: Urgency, language: str, notice: str | None, now: dt.datetime | None) -> Reply:
        """Emergency numbers first, then how to reach the desk once safe."""
        assert self.triage is not None
        safety = self.triage.safety.file
        chosen: SafetyMessage = safety.emergency if urgency == "urgent" else safety.crisis
        numbers = "\n".join(f"・{n.name}：{n.number}" for n in chosen.numbers)
        desk = self.desk.route(now)
        lines = [chosen.message_en] if language != "ja" else []
        lines += [chosen.message, numbers]
        if chosen.later:
            lines.append(chosen.later)
        lines.append(desk.message)
        message = "\n".join(lines)
        route = Route(
            kind="emergency",
            message=message,
            form_url=desk.form_url,
            phone=chosen.numbers[0].number,
            hours=EMERGENCY_HOURS,
            open_now=True,
        )
        return _triaged("urgent", message, route, notice, language)

    def reply(
        self, candidates: Sequence[Candidate], now: dt.datetime | None = None, calibration: Calibration | None = None
    ) -> Reply:
        # Only the top entry and the possible suggestions need a confidence.
        candidates = candidates[: self.policy.max_suggestions + 2]
        confidences = candidate_confidences(candidates, calibration or self.calibration)
        decision = decide(confidences, self.policy)
        top_conf = round(confidences[0], 4) if confidences else 0.0
        start = 1 if decision == "answered" else 0
        suggestions = [
            _suggestion(c.entry, conf)
            for c, conf in list(zip(candidates, confidences))[start : start + self.policy.max_suggestions]
            if conf >= self.policy.suggest_threshold
        ]
        ask_id = uuid.uuid4().hex
        if decision == "answered":
            top = candidates[0].entry
            return Reply(
                ask_id=ask_id,
                answered=True,
                decision=decision,
                answer=top.answer,
                faq=FaqRef(id=top.id, question=top.question, category=top.category),
                confidence=top_conf,
                suggestions=suggestions,
                route=None,
            )
        if decision == "ambiguous" and suggestions:
            message = AMBIGUOUS_MESSAGE
        else:
            decision, suggestions = "fallback", []
            message = FALLBACK_MESSAGE
        route = self.desk.route(now)
        return Reply(
            ask_id=ask_id,
            answered=False,
            decision=decision,
            answer=f"{message}\n{route.message}",
            faq=None,
            confidence=top_conf,
            suggestions=suggestions,
            route=route,
        )


def _triaged(decision: Decision, answer: str, route: Route | None, notice: str | None, language: str) -> Reply:
    """A reply decided before the FAQ is consulted: nothing answered, no suggestions."""
    return Reply(
        ask_id=uuid.uuid4().hex,
        answered=False,
        decision=decision,
        answer=answer,
        faq=None,
        confidence=0.0,
        suggestions=[],
        route=route,
        notice=notice,
        language=language,
    )


def _suggestion(entry: Entry, confidence: float) -> Suggestion:
    return Suggestion(id=entry.id, question=entry.question, category=entry.category, confidence=round(confidence, 4))
