"""Ranking a large corpus (an HNSW index) by candidates: only entries that can reach the
top are scored, each exactly.

An entry's fused score is a dense part (each model's question, answer and chunk cosines,
standardized and weighted) plus a lexical part (BM25 over lemmas and over readings,
likewise). The lexical part is known for every entry, since BM25 scores them all. The
dense part is computed for the entries that have a row among those each model's HNSW
search finds nearest the query. An entry with no such row has no cosine above the last
row found, which bounds its dense part; so once the found entries are scored, another
entry can reach the top `exact_top` only if its lexical part reaches the `exact_top`-th
fused score minus that bound. Those entries are scored too, best lexical part first, a
batch at a time, each batch raising the bar for the next (`max_lexical` at most). As far
as HNSW finds the nearest rows and the cap is not reached, the top `exact_top` are then
the entries scoring every entry would put there, under the same z-scores.

The z-scores need each signal's mean and spread over all entries: BM25's come from its
full score arrays (bot.retrieve); the dense signals' are estimated once per query on a
fixed sample of entries, whose rows are kept together for the purpose.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.dense import EntryRows, RowVectors, Signals
from bot.signals import Spread, best_of
from bot.types import Matrix

SAMPLE_SEED = 0
# Entries scored at a time on the lexical side, between raises of the bar they must clear.
LEXICAL_BATCH = 200


@dataclass(frozen=True)
class CandidateLimits:
    """The rows each model's search returns for each spelling of the query, how many of
    the top entries must be those scoring every entry would rank there, how many entries
    the lexical side may add at most, and how many entries stand for all of them in the
    dense signals' z-scores."""

    nearest_rows: int = 100
    exact_top: int = 10
    max_lexical: int = 1000
    sample_entries: int = 2000


@dataclass(frozen=True)
class Scored:
    """The scored entries, best first, with their fused score and the first model's
    question and answer cosines."""

    ids: np.ndarray
    fused: np.ndarray
    question: np.ndarray
    answer: np.ndarray


@dataclass(frozen=True)
class _Pass:
    """One model's part in one query."""

    vectors: RowVectors
    query: Matrix
    weights: tuple[float, float, float]
    spreads: tuple[Spread, Spread, Spread]


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest value, or minus infinity when there are fewer."""
    return -math.inf if len(values) < k else float(np.partition(values, len(values) - k)[len(values) - k])


def _best_signals(signal_sets: Iterable[Signals]) -> Signals:
    question, answer, chunk = best_of(signal_sets)
    return question, answer, chunk


class CandidateRanker:
    """Scores the candidates of a query over one or two models' HNSW indexes."""

    def __init__(self, rows: EntryRows, models: Sequence[RowVectors], limits: CandidateLimits) -> None:
        self._rows = rows
        self._limits = limits
        n = rows.entries
        sample = np.random.default_rng(SAMPLE_SEED).choice(n, min(limits.sample_entries, n), replace=False)
        self._sample_rows, self._sample_offsets = rows.rows_of(np.sort(sample))
        # Copied together, the sample's rows are read at memory speed, not one by one.
        self._samples = [model.take(self._sample_rows) for model in models]
        self._models = list(models)

    def rank(
        self, queries: Sequence[Matrix | None], weights: Sequence[tuple[float, float, float]], lexical_part: np.ndarray
    ) -> Scored:
        """`queries[i]` is the query's spellings as model i embeds them (None: not used),
        `weights[i]` the weights of its question, answer and chunk signals, and
        `lexical_part` every entry's weighted, standardized BM25 scores."""
        k = self._limits.nearest_rows
        passes: list[_Pass] = []
        found: list[np.ndarray] = []
        bound, everything_found = 0.0, False
        for model, sample, query, w in zip(self._models, self._samples, queries, weights):
            if query is None:
                continue
            sims, ids = model.search(query, k)
            population = _best_signals(
                self._rows.signals_of(sample.cosines(v), self._sample_rows, self._sample_offsets) for v in query
            )
            spreads = (Spread(population[0]), Spread(population[1]), Spread(population[2]))
            passes.append(_Pass(model, query, w, spreads))
            valid = ids >= 0
            found.append(ids[valid])
            if model.ntotal <= k:
                everything_found = True  # the search returned every row
                continue
            # No row outside has a cosine above the last one found for any spelling (nor
            # below -1, which bounds a signal under a negative weight).
            last = max(float(s[v][-1]) if v.any() else 1.0 for s, v in zip(sims, valid))
            bound += sum(wi * s.z_of(last if wi >= 0 else -1.0) for wi, s in zip(w, spreads))
        first = np.unique(self._rows.row_entry[np.concatenate(found)]) if found else np.zeros(0, dtype=np.int64)
        parts = [(first, *self._score(first, passes, lexical_part))]
        if not everything_found:
            parts += self._lexical_rest(first, parts[0][1], bound, passes, lexical_part)
        ids, fused, question, answer = (np.concatenate(column) for column in zip(*parts))
        order = np.lexsort((ids, -fused))
        return Scored(ids[order], fused[order], question[order], answer[order])

    def _lexical_rest(
        self, first: np.ndarray, fused: np.ndarray, bound: float, passes: Sequence[_Pass], lexical_part: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The entries outside `first` whose lexical part could lift them into the top,
        scored best lexical part first, a batch at a time: each batch can raise the
        `exact_top`-th fused score, and with it the lexical part the next entry needs."""
        top, most = self._limits.exact_top, self._limits.max_lexical
        floor = _kth_largest(fused, top)
        pool = np.flatnonzero(lexical_part >= floor - bound)
        scored = np.zeros(len(lexical_part), dtype=bool)
        scored[first] = True
        pool = pool[~scored[pool]]
        if len(pool) > most:
            pool = pool[np.argpartition(-lexical_part[pool], most)[:most]]
        pool = pool[np.argsort(-lexical_part[pool], kind="stable")]
        parts = []
        start = 0
        while start < len(pool) and lexical_part[pool[start]] >= floor - bound:
            batch = np.sort(pool[start : start + LEXICAL_BATCH])
            start += LEXICAL_BATCH
            parts.append((batch, *self._score(batch, passes, lexical_part)))
            fused = np.concatenate([fused, parts[-1][1]])
            floor = _kth_largest(fused, top)
        return parts

    def _score(
        self, entries: np.ndarray, passes: Sequence[_Pass], lexical_part: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The entries' fused scores, and the first model's question and answer cosines."""
        fused = lexical_part[entries].astype(np.float64)
        none = np.full(len(entries), -1.0, dtype=np.float32)
        if not len(entries):
            return fused, none, none
        rows, offsets = self._rows.rows_of(entries)
        first: Signals | None = None
        for p in passes:
            signals = _best_signals(self._rows.signals_of(p.vectors.cosines_of(v, rows), rows, offsets) for v in p.query)
            for w, spread, values in zip(p.weights, p.spreads, signals):
                if w:
                    fused += w * spread.z(values)
            if first is None:
                first = signals
        return (fused, none, none) if first is None else (fused, first[0], first[1])
