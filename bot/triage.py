"""Before and beside the FAQ: small talk, someone in danger now, and the notes a reply carries.

Triage reads the message and its ranking. Urgent danger is checked first and wins over
everything, because a wrong FAQ answer to "a customer has a knife" costs far more than a
needless 110 line. Small talk never shadows an FAQ question: greetings and thanks around
a question are stripped before it is ranked, and a message counts as small talk only
when it is nothing else, or when the FAQ has no confident answer and the message is
very close to a small-talk example. The texts the desk edits live in corpus/
(smalltalk.yaml, safety.yaml, languages.yaml); thresholds are settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from bot.corpus import Strict, Text, read_yaml, validate
from bot.embed.base import Embedder
from bot.errors import CorpusError
from bot.text import normalize
from bot.triage_model import CALM, CRISIS, URGENT, DangerModel, features, fit
from bot.types import Matrix

SMALLTALK_FILE = "smalltalk.yaml"
SAFETY_FILE = "safety.yaml"
LANGUAGES_FILE = "languages.yaml"
TRIAGE_FILES = (SMALLTALK_FILE, SAFETY_FILE, LANGUAGES_FILE)

Urgency = Literal["urgent", "crisis"]
# What may stand between or around small-talk phrases: spaces, punctuation, 〜, laughter
# (a run of w is laughter only when no Latin letter follows it: "thanks, what …" keeps its "what").
_SEPARATORS = r"(?:[\s、。，,.．!！?？〜~ー…・♪☆★ｗ笑]|w++(?![a-z]))*"
_LATIN = re.compile(r"[a-z]")
# Words that strengthen a phrase without changing it (本当にありがとう, thank you so much).
_INTENSIFIERS = r"(?:本当に|ほんとに|ほんとうに|どうも|とても|すごく|大変|(?:so much|very much|a lot|really|so|again|bạn|nhiều|lắm)(?![a-z]))"
_SMALLTALK_MAX_CHARS = 40
_MIN_REMAINDER_CHARS = 4


class SmallTalkIntent(Strict):
    id: Text
    reply: Text
    reply_en: Text
    examples: tuple[Text, ...] = Field(min_length=1)


class SafetyNumber(Strict):
    number: Text
    name: Text
    source: Text


class SafetyMessage(Strict):
    message: Text
    message_en: Text
    numbers: tuple[SafetyNumber, ...] = Field(min_length=1)
    later: str | None = None


class SafetyCues(Strict):
    danger: tuple[Text, ...]
    right_now: tuple[Text, ...]
    now: tuple[Text, ...]
    past: tuple[Text, ...]
    self_harm: tuple[Text, ...]
    figures_of_speech: tuple[Text, ...] = ()


class SafetyFile(Strict):
    emergency: SafetyMessage
    crisis: SafetyMessage
    cues: SafetyCues
    urgent_examples: tuple[Text, ...] = Field(min_length=1)
    crisis_examples: tuple[Text, ...] = Field(min_length=1)
    calm_examples: tuple[Text, ...] = Field(min_length=1)


class LanguagesFile(Strict):
    default: Text
    notes: dict[str, Text]


@dataclass(frozen=True)
class SafetyMargins:
    """How much closer to the urgent (or crisis) examples than to the calm ones a message
    must be: with danger words, without them, and for a crisis."""

    urgent: float
    danger: float
    crisis: float
    urgent_floor: float = 0.0
    """Without danger words, a message must also be at least this close to an urgent
    example: a message far from every example can still be a little less far from them."""
    urgent_probability: float = 1.01
    """The classifier's probability of urgent that makes a message urgent (above 1: never)."""
    crisis_probability: float = 1.01
    """The classifier's probability of crisis that makes a message a crisis (above 1: never)."""


# How strongly the classifier's weights are held towards zero. 0.01 and 0.1 scored the same
# with scripts/cv_triage.py (--l2); the stronger penalty suits a few dozen urgent examples.
DEFAULT_L2 = 0.1


@dataclass(frozen=True)
class TriageCorpus:
    smalltalk: tuple[SmallTalkIntent, ...]
    safety: SafetyFile
    languages: LanguagesFile


def load_triage_corpus(folder: Path) -> TriageCorpus | None:
    """smalltalk.yaml, safety.yaml and languages.yaml, validated like the rest of corpus/;
    None for a corpus that has none of them (an FAQ benchmark, say)."""
    folder = Path(folder)
    if not any((folder / name).exists() for name in TRIAGE_FILES):
        return None
    path = folder / SMALLTALK_FILE
    raw = read_yaml(path, required=True).get("intents")
    if not isinstance(raw, list) or not raw:
        raise CorpusError(f"{path}: field 'intents' must be a non-empty list")
    intents = tuple(validate(SmallTalkIntent, item, f"{path}: intent {i}") for i, item in enumerate(raw, start=1))
    safety = validate(SafetyFile, read_yaml(folder / SAFETY_FILE, required=True), str(folder / SAFETY_FILE))
    for name in ("danger", "right_now", "now", "past", "self_harm", "figures_of_speech"):
        for pattern in getattr(safety.cues, name):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CorpusError(f"{folder / SAFETY_FILE}: cues.{name}: {pattern!r} is not a valid pattern ({exc})") from None
    languages = validate(LanguagesFile, read_yaml(folder / LANGUAGES_FILE, required=True), str(folder / LANGUAGES_FILE))
    if languages.default not in languages.notes:
        raise CorpusError(f"{folder / LANGUAGES_FILE}: field 'default': {languages.default!r} has no line under 'notes'")
    return TriageCorpus(intents, safety, languages)


def _plain(text: str) -> str:
    """Normalized, without emoji and other symbols that carry no words."""
    return "".join(ch for ch in normalize(text) if unicodedata.category(ch) not in ("So", "Sk", "Cs"))


def _cue(patterns: Sequence[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _found(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and pattern.search(text) is not None


class SmallTalk:
    """Greetings, thanks, goodbyes and questions about the bot, in any language."""

    def __init__(self, intents: Sequence[SmallTalkIntent], vectors: Matrix, labels: Sequence[int]) -> None:
        self.intents = tuple(intents)
        self._vectors = vectors
        self._labels = np.asarray(labels, dtype=np.int64)
        phrases: list[tuple[str, int]] = sorted(
            ((_plain(e), i) for i, intent in enumerate(self.intents) for e in intent.examples),
            key=lambda p: len(p[0]),
            reverse=True,
        )
        self._intent_of = {phrase: i for phrase, i in phrases}
        alternation = "|".join(
            re.escape(p) + (r"(?![a-z])" if _LATIN.search(p[-1]) else "") for p, _ in phrases if p
        )
        # Polite or casual endings people add to a phrase (ありがとうね, こんにちはー).
        one = (
            rf"(?:{_INTENSIFIERS}{_SEPARATORS})?(?:{alternation})(?:です|ございます|ございました|ね|よ|な)?"
            rf"(?:{_SEPARATORS}{_INTENSIFIERS})*"
        )
        self._leading = re.compile(rf"^{_SEPARATORS}(?:{one}{_SEPARATORS})+")
        self._trailing = re.compile(rf"(?:{_SEPARATORS}{one})+{_SEPARATORS}$")
        self._phrase = re.compile(alternation)

    @staticmethod
    def texts(intents: Sequence[SmallTalkIntent]) -> tuple[list[str], list[int]]:
        """Every example and the index of its intent, in the order the vectors are kept."""
        pairs = [(e, i) for i, intent in enumerate(intents) for e in intent.examples]
        return [e for e, _ in pairs], [i for _, i in pairs]

    def split(self, text: str) -> tuple[str, int | None]:
        """(the message without small-talk phrases around it, the intent when nothing else
        is left). "ありがとう、セミナーの資料は？" -> ("セミナーの資料は？", None)."""
        plain = _plain(text)
        lead = self._leading.match(plain)
        rest = plain[lead.end() :] if lead else plain
        trail = self._trailing.search(rest)
        rest = rest[: trail.start()] if trail else rest
        if not (lead or trail):
            return text, None
        if len(re.sub(_SEPARATORS, "", rest)) >= _MIN_REMAINDER_CHARS:
            return rest.strip(), None
        first = self._phrase.search(plain)
        return "", self._intent_of[first.group(0)] if first else 0

    def nearest(self, vectors: Matrix) -> tuple[int, float]:
        """The intent of the example closest in meaning to any of the message's vectors."""
        sims = vectors @ self._vectors.T
        row, col = np.unravel_index(int(np.argmax(sims)), sims.shape)
        return int(self._labels[col]), float(sims[row, col])

    def reply(self, intent: int, language: str) -> str:
        chosen = self.intents[intent]
        return chosen.reply if language == "ja" else chosen.reply_en


class Safety:
    """Tells a message about danger happening now from one about danger that happened."""

    def __init__(
        self, safety: SafetyFile, vectors: dict[str, Matrix], margins: SafetyMargins, model: DangerModel | None = None
    ) -> None:
        self.file = safety
        self._vectors = vectors
        self.margins = margins
        self.model = model
        cues = safety.cues
        self._danger, self._right_now, self._now = _cue(cues.danger), _cue(cues.right_now), _cue(cues.now)
        self._past, self._self_harm, self._figures = _cue(cues.past), _cue(cues.self_harm), _cue(cues.figures_of_speech)

    def with_margins(self, margins: SafetyMargins) -> Safety:
        """The same examples and cues with other thresholds, without embedding anything
        again (scripts/cv_triage.py tries many)."""
        return Safety(self.file, self._vectors, margins, self.model)

    @staticmethod
    def texts(safety: SafetyFile) -> dict[str, list[str]]:
        return {
            "urgent": list(safety.urgent_examples),
            "crisis": list(safety.crisis_examples),
            "calm": list(safety.calm_examples),
        }

    def alarming(self, text: str) -> bool:
        """Whether the message has a danger or self-harm word, so a greeting around it
        ("もしもし、助けて") is read for danger rather than answered as small talk."""
        plain = _plain(text)
        return _found(self._danger, plain) or _found(self._self_harm, plain)

    def cues(self, text: str) -> tuple[bool, bool, bool, bool, bool, bool]:
        """Danger, right now, ongoing, past, self-harm and figure of speech, in the order
        of bot.triage_model.CUE_NAMES; a figure of speech cancels danger and self-harm."""
        plain = _plain(text)
        figure = _found(self._figures, plain)
        return (
            _found(self._danger, plain) and not figure,
            _found(self._right_now, plain),
            _found(self._now, plain),
            _found(self._past, plain),
            _found(self._self_harm, plain) and not figure,
            figure,
        )

    def probabilities(self, text: str, vectors: Matrix) -> tuple[float, float, float] | None:
        """The classifier's (calm, urgent, crisis) for the message; None without a classifier."""
        if self.model is None:
            return None
        p = self.model.probabilities(features(vectors[:1], [self.cues(text)]))[0]
        return float(p[CALM]), float(p[URGENT]), float(p[CRISIS])

    def similarities(self, vectors: Matrix) -> dict[str, float]:
        """The message's best cosine to the urgent, crisis and calm examples."""
        return {kind: float((vectors @ examples.T).max()) for kind, examples in self._vectors.items()}

    def assess(self, text: str, vectors: Matrix) -> Urgency | None:
        """"urgent", "crisis" or None.

        Self-harm words (not figures of speech), a message much closer to the crisis
        examples than to any other that the classifier does not find likelier calm, or one
        the classifier finds likely enough a crisis, mean crisis. A message that places the
        danger in the past, and says nothing of now, is a consultation. Otherwise danger
        words with a sign that it is going on, danger words in a message closer to the
        urgent examples than to the calm ones, danger words going on in a message the
        classifier finds likelier urgent than calm, a message much closer to the urgent
        examples that the classifier does not find likelier calm, or one the classifier
        finds likely enough urgent, mean urgent.
        """
        danger, right_now, now, past, self_harm, _ = cues = self.cues(text)
        sims = self.similarities(vectors)
        m = self.margins
        p = None if self.model is None else self.model.probabilities(features(vectors[:1], [cues]))[0]
        near_crisis = sims["crisis"] - max(sims["calm"], sims["urgent"]) >= m.crisis
        if self_harm or (near_crisis and (p is None or p[CRISIS] >= p[CALM])):
            return "crisis"
        if p is not None and p[CRISIS] >= m.crisis_probability:
            return "crisis"
        if past and not right_now:
            return None
        closer = sims["urgent"] - sims["calm"]
        ongoing = right_now or now
        if danger and ((right_now and closer >= -m.danger) or (ongoing and closer >= 0) or closer >= m.danger):
            return "urgent"
        if danger and ongoing and p is not None and p[URGENT] > p[CALM]:
            return "urgent"
        if closer >= m.urgent and sims["urgent"] >= m.urgent_floor and (p is None or p[URGENT] >= p[CALM]):
            return "urgent"
        return "urgent" if p is not None and p[URGENT] >= m.urgent_probability else None


class Languages:
    """The one line, in the person's language, that says the answer below is in Japanese."""

    def __init__(self, languages: LanguagesFile) -> None:
        self._file = languages

    def note(self, language: str) -> str | None:
        if language == "ja":
            return None
        notes = self._file.notes
        return notes.get(language) or notes.get(language.split("-", 1)[0]) or notes[self._file.default]


@dataclass(frozen=True)
class Triage:
    smalltalk: SmallTalk
    safety: Safety
    languages: Languages


_EXAMPLE_VECTORS: weakref.WeakKeyDictionary[Embedder, dict[tuple[str, ...], Matrix]] = weakref.WeakKeyDictionary()


def _embedded(embedder: Embedder, texts: tuple[str, ...], cache_dir: Path | None = None) -> Matrix:
    """The examples' vectors, embedded once per model and text list: every engine that is
    assembled around the same model shares them, and with `cache_dir` so does every later
    process (a service start, a reload, a replica), which would otherwise spend seconds
    embedding a thousand examples before it can answer."""
    per_model = _EXAMPLE_VECTORS.setdefault(embedder, {})
    if texts in per_model:
        return per_model[texts]
    path = None
    if cache_dir is not None and cache_dir.is_dir():
        key = json.dumps([embedder.fingerprint(), getattr(embedder, "runtime", ""), texts], ensure_ascii=False, default=str)
        path = cache_dir / f"examples-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
        try:
            cached = np.load(path)
            if cached.shape == (len(texts), embedder.dim):
                per_model[texts] = cached
                return cached
        except (OSError, ValueError):
            pass
    vectors = embedder.embed_queries(list(texts))
    if path is not None:
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        try:
            with partial.open("wb") as out:
                np.save(out, vectors)
            os.replace(partial, path)
        except OSError:
            partial.unlink(missing_ok=True)
    per_model[texts] = vectors
    return vectors


def build_triage(
    corpus: TriageCorpus,
    embedder: Embedder,
    margins: SafetyMargins,
    calm_texts: Sequence[str] = (),
    l2: float = DEFAULT_L2,
    cache_dir: Path | None = None,
) -> Triage:
    """Embed the examples with the model that will embed the messages (a few hundred short
    texts, once per process), and fit the classifier when a probability threshold is on.

    `calm_texts` are further calm examples for the classifier only (the FAQ's questions
    and the known unanswered ones): they show it the many ordinary ways people write to
    the desk, where the calm examples in safety.yaml only show calm talk about violence.
    `cache_dir` keeps the vectors on disk for later processes.
    """
    smalltalk_texts, labels = SmallTalk.texts(corpus.smalltalk)
    safety_texts = Safety.texts(corpus.safety)
    classifier = margins.urgent_probability <= 1.0 or margins.crisis_probability <= 1.0
    extra = list(calm_texts) if classifier else []
    order = [*smalltalk_texts, *(t for texts in safety_texts.values() for t in texts), *extra]
    matrix = _embedded(embedder, tuple(normalize(t) for t in order), cache_dir)
    smalltalk_vectors, rest = matrix[: len(smalltalk_texts)], matrix[len(smalltalk_texts) :]
    vectors: dict[str, Matrix] = {}
    for kind, texts in safety_texts.items():
        vectors[kind], rest = rest[: len(texts)], rest[len(texts) :]
    safety = Safety(corpus.safety, vectors, margins)
    if classifier:
        labelled = {**safety_texts, "smalltalk": smalltalk_texts, "extra": extra}
        safety.model = fit_danger_model(safety, labelled, {**vectors, "smalltalk": smalltalk_vectors, "extra": rest}, l2)
    return Triage(
        SmallTalk(corpus.smalltalk, smalltalk_vectors, labels),
        safety,
        Languages(corpus.languages),
    )


def fit_danger_model(safety: Safety, texts: dict[str, list[str]], vectors: dict[str, Matrix], l2: float) -> DangerModel:
    """The classifier fitted on urgent, crisis and everything else as calm (the calm
    examples, small talk and the extra calm texts), each with its cue indicators."""
    label = {"urgent": URGENT, "crisis": CRISIS}
    rows: list[Matrix] = []
    cues: list[tuple[bool, ...]] = []
    labels: list[int] = []
    for kind, kind_texts in texts.items():
        rows.append(vectors[kind])
        cues += [safety.cues(t) for t in kind_texts]
        labels += [label.get(kind, CALM)] * len(kind_texts)
    return fit(features(np.vstack(rows), cues), labels, l2)


SMALLTALK_MAX_CHARS = _SMALLTALK_MAX_CHARS
