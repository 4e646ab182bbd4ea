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


# A term in more than this share of the entries is also kept as a dense row.
HEAVY_SHARE = 0.25


class Postings:
    """Each term's entries and values (a term-by-entry matrix kept by term), added into a
    per-entry array one query term at a time.

    The terms found in more than a quarter of the entries (particles' readings, "する")
    are also kept as dense rows, which a query adds whole: cheaper than scattering into
    most of the entries, and the same sums, since adding zero changes nothing."""

    def __init__(self, starts: np.ndarray, entries: np.ndarray, values: np.ndarray, n: int) -> None:
        self._starts, self._entries, self._values = starts, entries, values
        self._dense: dict[int, np.ndarray] = {}
        for term in np.flatnonzero(np.diff(starts) > HEAVY_SHARE * n):
            row = np.zeros(n, dtype=values.dtype)
            row[entries[starts[term] : starts[term + 1]]] = values[starts[term] : starts[term + 1]]
            self._dense[int(term)] = row

    def add(self, out: np.ndarray, term: int, weight: float | None = None) -> None:
        """Add the term's values into `out`, or `weight` where the term has a value."""
        row = self._dense.get(term)
        if row is not None:
            np.add(out, row if weight is None else weight * row, out=out)
            return
        span = slice(self._starts[term], self._starts[term + 1])
        np.add.at(out, self._entries[span], self._values[span] if weight is None else weight)


class Bm25:
    """BM25 over pre-tokenized documents; unknown query terms score nothing.

    bm25s builds the index; queries are scored from its term-by-document scores in the
    order bm25s itself adds them, so the values are bm25s's own."""

    def __init__(self, documents: Sequence[Sequence[str]]) -> None:
        model = bm25s.BM25()
        model.index([list(d) for d in documents], show_progress=False)
        if model.nonoccurrence_array is not None:
            raise ValueError(f"BM25 variant {model.method!r} scores absent terms; the scorer below does not")
        scores = model.scores
        self._vocab: dict[str, int] = dict(model.vocab_dict)
        self._n = len(documents)
        self._postings = Postings(scores["indptr"], scores["indices"], scores["data"].astype(np.float32), self._n)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        out = np.zeros(self._n, dtype=np.float32)
        for term in query_terms:
            i = self._vocab.get(term)
            if i is not None:
                self._postings.add(out, i)
        return out


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
        starts = np.searchsorted(pairs[:, 0], np.arange(len(term_ids) + 1))
        self._postings = Postings(starts, pairs[:, 1], np.ones(len(pairs), dtype=np.float64), self._n)
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
                self._postings.add(covered, i, weight)
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
