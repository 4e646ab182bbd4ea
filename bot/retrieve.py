"""Rank FAQ entries for a query: dense similarity fused with BM25, per entry.

Dense: the query is embedded once and compared with every field row; an entry's
question score is its best question/alternate row, its answer score its answer row.
Lexical: BM25 over fugashi lemmas of the entry's question, alternates and answer.
The fused score is a weighted sum; the decision step (bot.answer) reads the features.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import bm25s
import numpy as np

from bot.corpus import Corpus, Entry
from bot.embed.base import Embedder
from bot.errors import IndexMismatchError
from bot.index import REBUILD_HINT, FaqIndex, field_rows
from bot.text import TextProcessor
from bot.types import Vector


@dataclass(frozen=True)
class FusionWeights:
    question: float
    answer: float
    lexical: float


@dataclass(frozen=True)
class Candidate:
    """One entry's scores for one query; `score` orders candidates."""

    entry: Entry
    score: float
    question: float
    answer: float
    lexical: float
    coverage: float


class Retriever:
    """Holds everything a query needs, built once per process."""

    def __init__(
        self,
        corpus: Corpus,
        faq_index: FaqIndex,
        embedder: Embedder,
        text: TextProcessor,
        weights: FusionWeights,
    ) -> None:
        self.corpus = corpus
        self._embedder = embedder
        self._text = text
        self._weights = weights
        self._index = faq_index.index
        fields = field_rows(corpus)
        if faq_index.rows != [row for row, _ in fields]:
            raise IndexMismatchError(f"the index rows do not match the corpus fields: {REBUILD_HINT}")
        position = {e.id: i for i, e in enumerate(corpus.entries)}
        self._row_entry = np.array([position[r.entry_id] for r in faq_index.rows], dtype=np.int64)
        self._row_is_answer = np.array([r.kind == "answer" for r in faq_index.rows])

        # Lexical rows mirror the dense rows: one BM25 document per field, so a short
        # alternate phrasing is not drowned in its entry's long answer.
        row_tokens = [text.tokens(field) for _, field in fields]
        self._bm25 = bm25s.BM25()
        self._bm25.index(row_tokens, show_progress=False)
        self._vocab = set(self._bm25.vocab_dict)
        entry_sets: list[set[str]] = [set() for _ in corpus.entries]
        for i, tokens in zip(self._row_entry, row_tokens):
            entry_sets[i].update(tokens)
        self._doc_sets = entry_sets
        df = Counter(t for d in entry_sets for t in d)
        n = len(entry_sets)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def embed_query(self, query: str) -> Vector:
        return self._embedder.embed_queries([self._text.fold(query)])[0]

    def rank(self, query: str) -> list[Candidate]:
        """All entries, best first."""
        vector = self.embed_query(query)
        return self.rank_vector(query, vector)

    def rank_vector(self, query: str, vector: Vector) -> list[Candidate]:
        n = len(self.corpus.entries)
        sims, ids = self._index.search(vector.reshape(1, -1), self._index.ntotal)
        row_sim = np.empty(self._index.ntotal, dtype=np.float32)
        row_sim[ids[0]] = sims[0]
        question, answer = self._per_entry(row_sim)

        tokens = self._text.tokens(query)
        known = [t for t in tokens if t in self._vocab]
        row_bm25 = self._bm25.get_scores(known) if known else np.zeros(len(self._row_entry), dtype=np.float32)
        top = float(row_bm25.max()) if len(row_bm25) else 0.0
        lexical, _ = self._per_entry(row_bm25 / top if top > 0 else np.zeros_like(row_bm25))
        coverage = self._coverage(set(tokens))

        w = self._weights
        fused = w.question * question + w.answer * answer + w.lexical * lexical
        order = np.argsort(-fused, kind="stable")
        return [
            Candidate(
                entry=self.corpus.entries[i],
                score=float(fused[i]),
                question=float(question[i]),
                answer=float(answer[i]),
                lexical=float(lexical[i]),
                coverage=float(coverage[i]),
            )
            for i in order
        ]

    def _per_entry(self, row_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best question/alternate row and the answer row of each entry."""
        n = len(self.corpus.entries)
        question = np.full(n, -np.inf, dtype=np.float32)
        answer = np.full(n, -np.inf, dtype=np.float32)
        asked = ~self._row_is_answer
        np.maximum.at(question, self._row_entry[asked], row_scores[asked])
        np.maximum.at(answer, self._row_entry[self._row_is_answer], row_scores[self._row_is_answer])
        return question, answer

    def _coverage(self, query_tokens: set[str]) -> np.ndarray:
        """IDF-weighted share of the query's words that each entry contains: an absolute
        signal (unlike normalized BM25) that helps tell out-of-scope queries apart."""
        n = len(self._doc_sets)
        if not query_tokens:
            return np.zeros(n, dtype=np.float32)
        default = max(self._idf.values(), default=1.0)
        weights = {t: self._idf.get(t, default) for t in query_tokens}
        total = sum(weights.values())
        return np.array(
            [sum(w for t, w in weights.items() if t in doc) / total for doc in self._doc_sets],
            dtype=np.float32,
        )
