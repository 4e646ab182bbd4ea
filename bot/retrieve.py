"""Rank FAQ entries for a query: several dense and lexical signals, fused per entry.

Signals, each one number per entry:
- question: best cosine between the query and the entry's question or alternates, or
  their kana spellings, all embedded as queries (question-to-question matching);
- answer: cosine to the whole answer, embedded as a passage;
- chunk: best cosine to a piece of a long answer (the answer itself when short);
- base question, base chunk: the same two with the unadapted model, when the index
  holds an adapted one (each model gets right some queries the other misses);
- lexical: BM25 over fugashi lemmas of the entry's question, alternates and answer;
- reading: BM25 over bigrams of their katakana readings.
A query whose hiragana holds words the corpus writes in kanji or katakana is also scored
respelled (bot.text.KanaRespeller: "せみなーのしりょう" as "セミナーの資料"); each signal
keeps each entry's best value over the two spellings.
Every candidate also carries the query's best cosine to the questions the FAQ is known
not to answer (corpus/unanswered.yaml); it does not rank, it informs the decision.
Each signal is standardized over the entries (z-score) before the weighted sum, so
weights do not depend on the scale of cosines or BM25. The raw values are kept on
the candidate for the decision step (bot.answer), which needs absolute evidence.

With an exact index every entry is scored. With an HNSW index (a large corpus,
bot.search_index) only the entries that can reach the top are, each exactly
(bot.candidates).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from bot.candidates import CandidateLimits, CandidateRanker
from bot.corpus import Corpus, Entry
from bot.dense import EntryRows, RowVectors, Signals
from bot.embed.base import submit_queries
from bot.errors import IndexMismatchError
from bot.index import REBUILD_HINT, WRITTEN_KINDS, FaqIndex, field_rows
from bot.language import is_romaji, romaji_to_kana
from bot.lexical import Lexicon
from bot.search_index import kind_of
from bot.signals import best_of, standardize
from bot.text import KanaRespeller, TextProcessor, normalize
from bot.types import Matrix


@dataclass(frozen=True)
class FusionWeights:
    question: float
    answer: float
    chunk: float
    lexical: float
    reading: float
    base_question: float = 0.0
    base_chunk: float = 0.0


@dataclass(frozen=True)
class Candidate:
    """One entry's scores for one query; `score` orders candidates."""

    entry: Entry
    score: float
    question: float
    answer: float
    lexical: float
    reading: float
    coverage: float
    unanswered: float = 0.0
    """The query's best cosine to a known unanswered question (the same on every candidate)."""


class RankedEntries(Sequence[Candidate]):
    """Candidates best first, each made when first read: callers read the first few, and
    making one for every entry of a large corpus cost more than ranking them."""

    def __init__(
        self,
        entries: Sequence[Entry],
        ids: np.ndarray,
        signals: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        unanswered: float,
    ) -> None:
        """The entries `ids` of `entries`, in order, with their score, question, answer,
        lexical, reading and coverage signals in the same order."""
        self._entries = entries
        self._ids = ids
        self._signals = signals
        self._unanswered = unanswered
        self._made: list[Candidate | None] = [None] * len(ids)

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, i: int) -> Candidate: ...

    @overload
    def __getitem__(self, i: slice) -> list[Candidate]: ...

    def __getitem__(self, i: int | slice) -> Candidate | list[Candidate]:
        if isinstance(i, slice):
            return [self._candidate(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("candidate index out of range")
        return self._candidate(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RankedEntries({list(self)!r})"

    def _candidate(self, i: int) -> Candidate:
        made = self._made[i]
        if made is None:
            score, question, answer, lexical, reading, coverage = (float(s[i]) for s in self._signals)
            entry = self._entries[int(self._ids[i])]
            made = Candidate(entry, score, question, answer, lexical, reading, coverage, self._unanswered)
            self._made[i] = made
        return made


@dataclass(frozen=True)
class Ranking:
    """One pass over a query: the ranked entries, the cosines to the known unanswered
    questions, and the query's spellings as embedded by the index's model and, when the
    index keeps one, by the base model. The first spelling is the message as it reads
    best: as typed, or for romaji, in kana."""

    candidates: Sequence[Candidate]
    unanswered_cosines: np.ndarray
    vectors: Matrix
    base_vectors: Matrix | None = None


class Retriever:
    """Holds everything a query needs, built once per process."""

    def __init__(
        self,
        corpus: Corpus,
        faq_index: FaqIndex,
        text: TextProcessor,
        weights: FusionWeights,
        lexicon: Lexicon,
        respeller: KanaRespeller,
        *,
        cache_size: int = 0,
        exhaustive: bool | None = None,
        limits: CandidateLimits = CandidateLimits(),
    ) -> None:
        """`lexicon` and `respeller` come from the corpus (`for_corpus`). Every entry is
        scored when `exhaustive`, by default when the index is exact; otherwise the
        candidates, within `limits`."""
        self.corpus = corpus
        # Asked again (the widget's example questions, a retry), a query costs a lookup.
        # One cache per retriever, so a reload, which builds a new one, starts empty.
        self._cached = functools.lru_cache(maxsize=cache_size)(self._ranking) if cache_size else self._ranking
        self._text = text
        self._weights = weights
        self._lexicon = lexicon
        self._respeller = respeller
        self._embedder = faq_index.embedder
        self._base = faq_index.base
        self._unanswered = faq_index.unanswered
        try:
            self._rows = EntryRows(faq_index.rows, [e.id for e in corpus.entries])
        except (KeyError, ValueError) as exc:
            raise IndexMismatchError(f"the index rows do not match the corpus entries: {REBUILD_HINT}") from exc
        self._vectors = RowVectors(faq_index.index)
        self._base_vectors = RowVectors(faq_index.base.index) if faq_index.base is not None else None
        self._exhaustive = kind_of(faq_index.index) == "exact" if exhaustive is None else exhaustive
        models = [self._vectors] + ([self._base_vectors] if self._base_vectors is not None else [])
        self._candidates = None if self._exhaustive else CandidateRanker(self._rows, models, limits)

    @classmethod
    def for_corpus(
        cls,
        corpus: Corpus,
        faq_index: FaqIndex,
        text: TextProcessor,
        weights: FusionWeights,
        *,
        respell_kana: bool = True,
        cache_size: int = 0,
        limits: CandidateLimits = CandidateLimits(),
    ) -> Retriever:
        """The retriever of an index built from `corpus`: its lexical signals and kana
        respellings are made from the same fields the index embedded."""
        fields = field_rows(corpus, text)
        if faq_index.rows != [row for row, _ in fields]:
            raise IndexMismatchError(f"the index rows do not match the corpus fields: {REBUILD_HINT}")
        position = {e.id: i for i, e in enumerate(corpus.entries)}
        entry_tokens: list[list[str]] = [[] for _ in corpus.entries]
        entry_grams: list[list[str]] = [[] for _ in corpus.entries]
        written: list[str] = []
        for row, field in fields:
            if row.kind in WRITTEN_KINDS:
                lemmas, grams = text.analyze(field)
                entry_tokens[position[row.entry_id]] += lemmas
                entry_grams[position[row.entry_id]] += grams
                written.append(field)
        respeller = KanaRespeller(text.spellings(written) if respell_kana else {})
        lexicon = Lexicon(entry_tokens, entry_grams)
        return cls(corpus, faq_index, text, weights, lexicon, respeller, cache_size=cache_size, limits=limits)

    @property
    def exhaustive(self) -> bool:
        """Whether every entry is scored (an exact index) or only candidates (HNSW)."""
        return self._candidates is None

    def rank(self, query: str) -> Sequence[Candidate]:
        """The entries, best first: all of them, or with an HNSW index the candidates,
        whose first ten are, within bot.candidates' limits, those scoring every entry
        would put there."""
        return self.ranking(query).candidates

    def rank_with_unanswered(self, query: str) -> tuple[Sequence[Candidate], np.ndarray]:
        """The ranked entries, and the query's cosine to each known unanswered
        question in corpus order: a fit leaves out the ones written with the query, as
        the service never meets a query in its own list."""
        ranked = self.ranking(query)
        return ranked.candidates, ranked.unanswered_cosines

    def spellings(self, query: str) -> list[str]:
        """The query as typed and, when its hiragana holds corpus words, respelled; romaji
        is read as kana first ("semina no shiryo" as "せみなのしりょ", then respelled). Each
        entry keeps its best score over the spellings: the spelling as typed still counts
        when a respelling breaks an ordinary word ("いいんですか" -> "委員ですか")."""
        folded = self._text.fold(query)
        spellings = [folded, self._respeller.respell(folded)]
        if is_romaji(query):
            kana = self._text.fold(romaji_to_kana(query))
            spellings = [kana, self._respeller.respell(kana), folded]
        return list(dict.fromkeys(spellings))

    def ranking(self, query: str) -> Ranking:
        """The ranked entries, with what triage reads from the same pass (shared
        between callers that ask the same normalized query: read it, never change it)."""
        return self._cached(normalize(query))

    def _ranking(self, query: str) -> Ranking:
        spellings = self.spellings(query)
        w = self._weights
        base = self._base if w.base_question or w.base_chunk else None
        # Both models' passes start before either is awaited: on ONNX Runtime they run at once.
        pending = submit_queries(self._embedder, spellings)
        pending_base = submit_queries(base.embedder, spellings) if base is not None else None
        vectors = pending.result()
        unanswered_cosines = self._unanswered_cosines(vectors)
        unanswered = float(unanswered_cosines.max(initial=0.0))
        analyzed = [self._text.analyze(s) for s in spellings]
        lexical, reading, coverage = best_of(self._lexicon.scores(tokens, grams) for tokens, grams in analyzed)
        if self._candidates is not None:
            base_vectors = pending_base.result() if pending_base is not None else None
            scored = self._candidates.rank(
                [vectors, base_vectors],
                [(w.question, w.answer, w.chunk), (w.base_question, 0.0, w.base_chunk)],
                w.lexical * standardize(lexical) + w.reading * standardize(reading),
            )
            ids = scored.ids
            signals = (scored.fused, scored.question, scored.answer, lexical[ids], reading[ids], coverage[ids])
            candidates = RankedEntries(self.corpus.entries, ids, signals, unanswered)
            return Ranking(candidates, unanswered_cosines, vectors, base_vectors)
        question, answer, chunk = self._dense(self._vectors, vectors)
        fused = (
            w.question * standardize(question)
            + w.answer * standardize(answer)
            + w.chunk * standardize(chunk)
            + w.lexical * standardize(lexical)
            + w.reading * standardize(reading)
        )
        base_vectors = None
        if pending_base is not None and self._base_vectors is not None:
            base_vectors = pending_base.result()
            base_question, _, base_chunk = self._dense(self._base_vectors, base_vectors)
            fused += w.base_question * standardize(base_question) + w.base_chunk * standardize(base_chunk)
        order = np.argsort(-fused, kind="stable")
        candidates = RankedEntries(
            self.corpus.entries,
            order,
            (fused[order], question[order], answer[order], lexical[order], reading[order], coverage[order]),
            unanswered,
        )
        return Ranking(candidates, unanswered_cosines, vectors, base_vectors)

    def _dense(self, vectors: RowVectors, query_vectors: Matrix) -> Signals:
        """Every entry's question, answer and chunk cosines, best over the spellings."""
        signals = best_of(self._rows.signals(vectors.cosines(v)) for v in query_vectors)
        return signals[0], signals[1], signals[2]

    def _unanswered_cosines(self, vectors: np.ndarray) -> np.ndarray:
        n = self._unanswered.ntotal
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        sims, ids = self._unanswered.search(vectors, n)
        best = np.full(n, -1.0, dtype=np.float32)
        np.maximum.at(best, ids.ravel(), sims.ravel())
        return best
