"""The lexical signals of a query, one number per entry: BM25 over fugashi lemmas, BM25
over katakana-reading bigrams, and the IDF-weighted share of the query's words each
entry contains (coverage).

Built from each entry's tokens, so the retriever can build it from the corpus and the
benchmark from tokens it has already analyzed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import bm25s
import numpy as np


class Bm25:
    """BM25 over pre-tokenized documents; unknown query terms score nothing."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        self._model = bm25s.BM25()
        self._model.index([list(d) for d in documents], show_progress=False)
        self._vocab = set(self._model.vocab_dict)
        self._n = len(documents)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        known = [t for t in query_terms if t in self._vocab]
        if not known:
            return np.zeros(self._n, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)


class Coverage:
    """IDF-weighted share of the query's words that each entry contains: an absolute
    signal (unlike standardized scores) that helps tell out-of-scope queries apart.
    A query word no entry has weighs as much as the rarest word the entries have.

    Kept as postings (each word's entries), so a query costs the entries its own words
    occur in rather than a pass over every entry."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        sets = [set(d) for d in documents]
        df = Counter(t for d in sets for t in d)
        self._n = len(sets)
        self._idf = {t: math.log(1 + (self._n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._default = max(self._idf.values(), default=1.0)
        term_ids = {t: i for i, t in enumerate(df)}
        pairs = np.array([(term_ids[t], e) for e, d in enumerate(sets) for t in d], dtype=np.int64).reshape(-1, 2)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        self._postings = pairs[:, 1]
        self._starts = np.searchsorted(pairs[:, 0], np.arange(len(term_ids) + 1))
        self._term_ids = term_ids

    def scores(self, query_terms: set[str]) -> np.ndarray:
        if not query_terms:
            return np.zeros(self._n, dtype=np.float32)
        weights = {t: self._idf.get(t, self._default) for t in query_terms}
        total = sum(weights.values())
        covered = np.zeros(self._n, dtype=np.float64)
        for term, weight in weights.items():
            i = self._term_ids.get(term)
            if i is not None:
                np.add.at(covered, self._postings[self._starts[i] : self._starts[i + 1]], weight)
        return (covered / total).astype(np.float32)


class Lexicon:
    """The three lexical signals over the entries, from each entry's lemmas and reading bigrams."""

    def __init__(self, entry_lemmas: Sequence[Sequence[str]], entry_grams: Sequence[Sequence[str]]) -> None:
        self._lemmas = Bm25(entry_lemmas)
        self._readings = Bm25(entry_grams)
        self._coverage = Coverage(entry_lemmas)

    def scores(self, lemmas: Sequence[str], grams: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each entry's lemma BM25, reading BM25 and coverage for one spelling of a query."""
        return self._lemmas.scores(lemmas), self._readings.scores(grams), self._coverage.scores(set(lemmas))
