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
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import bm25s
import faiss
import numpy as np

from bot.corpus import Corpus, Entry
from bot.embed.base import submit_queries
from bot.errors import IndexMismatchError
from bot.index import ASKED_KINDS, REBUILD_HINT, WRITTEN_KINDS, FaqIndex, field_rows
from bot.language import is_romaji, romaji_to_kana
from bot.text import KanaRespeller, TextProcessor, normalize
from bot.types import Matrix, Vector


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


def standardize(values: np.ndarray) -> np.ndarray:
    """z-scores over the entries; a constant signal contributes nothing."""
    std = float(values.std())
    if std < 1e-9:
        return np.zeros_like(values)
    return (values - values.mean()) / std


def _best_of(signal_sets: Iterable[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Signal by signal, each entry's best value over the query's spellings."""
    return tuple(np.max(values, axis=0) for values in zip(*signal_sets))


class _Bm25:
    """BM25 over pre-tokenized documents; unknown query terms score nothing."""

    def __init__(self, documents: list[list[str]]) -> None:
        self._model = bm25s.BM25()
        self._model.index(documents, show_progress=False)
        self._vocab = set(self._model.vocab_dict)
        self._n = len(documents)

    def scores(self, query_terms: list[str]) -> np.ndarray:
        known = [t for t in query_terms if t in self._vocab]
        if not known:
            return np.zeros(self._n, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)


@dataclass(frozen=True)
class Ranking:
    """One pass over a query: the ranked entries, the cosines to the known unanswered
    questions, and the query's spellings as embedded by the index's model and, when the
    index keeps one, by the base model. The first spelling is the message as it reads
    best: as typed, or for romaji, in kana."""

    candidates: list[Candidate]
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
        *,
        respell_kana: bool = True,
        cache_size: int = 0,
    ) -> None:
        self.corpus = corpus
        # Asked again (the widget's example questions, a retry), a query costs a lookup.
        # One cache per retriever, so a reload, which builds a new one, starts empty.
        self._cached = functools.lru_cache(maxsize=cache_size)(self._ranking) if cache_size else self._ranking
        self._text = text
        self._weights = weights
        self._index = faq_index.index
        self._embedder = faq_index.embedder
        self._base = faq_index.base
        self._unanswered = faq_index.unanswered
        fields = field_rows(corpus, text)
        if faq_index.rows != [row for row, _ in fields]:
            raise IndexMismatchError(f"the index rows do not match the corpus fields: {REBUILD_HINT}")
        position = {e.id: i for i, e in enumerate(corpus.entries)}
        self._row_entry = np.array([position[r.entry_id] for r in faq_index.rows], dtype=np.int64)
        kinds = np.array([r.kind for r in faq_index.rows])
        self._asked = np.isin(kinds, list(ASKED_KINDS))
        self._answer = kinds == "answer"
        self._chunk = kinds == "chunk"

        entry_tokens: list[list[str]] = [[] for _ in corpus.entries]
        entry_grams: list[list[str]] = [[] for _ in corpus.entries]
        written: list[str] = []
        for (row, field), i in zip(fields, self._row_entry):
            if row.kind in WRITTEN_KINDS:
                lemmas, grams = text.analyze(field)
                entry_tokens[i] += lemmas
                entry_grams[i] += grams
                written.append(field)
        self._respeller = KanaRespeller(text.spellings(written) if respell_kana else {})
        self._lemmas = _Bm25(entry_tokens)
        self._readings = _Bm25(entry_grams)
        self._entry_sets = [set(tokens) for tokens in entry_tokens]
        df = Counter(t for d in self._entry_sets for t in d)
        n = len(self._entry_sets)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def rank(self, query: str) -> list[Candidate]:
        """All entries, best first."""
        return self.ranking(query).candidates

    def rank_with_unanswered(self, query: str) -> tuple[list[Candidate], np.ndarray]:
        """All entries, best first, and the query's cosine to each known unanswered
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
        """All entries, best first, with what triage reads from the same pass (shared
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
        question, answer, chunk = _best_of(self._dense(self._index, v) for v in vectors)
        unanswered_cosines = self._unanswered_cosines(vectors)
        unanswered = float(unanswered_cosines.max(initial=0.0))
        analyzed = [self._text.analyze(s) for s in spellings]
        lexical, reading, coverage = _best_of(
            (self._lemmas.scores(tokens), self._readings.scores(grams), self._coverage(set(tokens)))
            for tokens, grams in analyzed
        )

        fused = (
            w.question * standardize(question)
            + w.answer * standardize(answer)
            + w.chunk * standardize(chunk)
            + w.lexical * standardize(lexical)
            + w.reading * standardize(reading)
        )
        base_vectors = None
        if base is not None and pending_base is not None:
            base_vectors = pending_base.result()
            base_question, _, base_chunk = _best_of(self._dense(base.index, v) for v in base_vectors)
            fused += w.base_question * standardize(base_question) + w.base_chunk * standardize(base_chunk)
        order = np.argsort(-fused, kind="stable")
        candidates = [
            Candidate(
                entry=self.corpus.entries[i],
                score=float(fused[i]),
                question=float(question[i]),
                answer=float(answer[i]),
                lexical=float(lexical[i]),
                reading=float(reading[i]),
                coverage=float(coverage[i]),
                unanswered=unanswered,
            )
            for i in order
        ]
        return Ranking(candidates, unanswered_cosines, vectors, base_vectors)

    def _unanswered_cosines(self, vectors: np.ndarray) -> np.ndarray:
        n = self._unanswered.ntotal
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        sims, ids = self._unanswered.search(vectors, n)
        best = np.full(n, -1.0, dtype=np.float32)
        np.maximum.at(best, ids.ravel(), sims.ravel())
        return best

    def _dense(self, index: faiss.Index, vector: Vector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each entry's question, answer and chunk cosines to the query vector."""
        sims, ids = index.search(vector.reshape(1, -1), index.ntotal)
        row_sim = np.empty(index.ntotal, dtype=np.float32)
        row_sim[ids[0]] = sims[0]
        answer = self._best(row_sim, self._answer)
        return self._best(row_sim, self._asked), answer, np.maximum(self._best(row_sim, self._chunk), answer)

    def _best(self, row_scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Each entry's best score over its rows in `mask` (-1 where it has none)."""
        best = np.full(len(self.corpus.entries), -1.0, dtype=np.float32)
        np.maximum.at(best, self._row_entry[mask], row_scores[mask])
        return best

    def _coverage(self, query_tokens: set[str]) -> np.ndarray:
        """IDF-weighted share of the query's words that each entry contains: an absolute
        signal (unlike standardized scores) that helps tell out-of-scope queries apart."""
        n = len(self._entry_sets)
        if not query_tokens:
            return np.zeros(n, dtype=np.float32)
        default = max(self._idf.values(), default=1.0)
        weights = {t: self._idf.get(t, default) for t in query_tokens}
        total = sum(weights.values())
        return np.array(
            [sum(w for t, w in weights.items() if t in doc) / total for doc in self._entry_sets],
            dtype=np.float32,
        )
