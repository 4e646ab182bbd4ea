"""The dense signals of a query vector, one number per entry: its best cosine to the
entry's asked rows (question, alternates, kana spellings), to its answer, and to a piece
of its answer (the answer itself when it has no pieces).

Cosines are FAISS's own inner-product kernel run over the row vectors where the index
keeps them, so scoring every row gives the values an exhaustive search returns, and
scoring a few rows gives the same values for those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from bot.index import ASKED_KINDS, Row
from bot.types import Matrix, Vector

Signals = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Question, answer and chunk cosines, one per entry."""


class RowVectors:
    """One model's row vectors, read in place from its FAISS index (exact or HNSW)."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        flat: Any = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
        self._flat = flat  # holds the storage's Python wrapper while its pointer is in use
        self._xb = flat.get_xb()
        self.ntotal = int(index.ntotal)
        self.dim = int(index.d)

    def cosines(self, vector: Vector) -> np.ndarray:
        """The query's inner product with every row, in row order."""
        out = np.empty(self.ntotal, dtype=np.float32)
        query = np.ascontiguousarray(vector, dtype=np.float32)
        faiss.fvec_inner_products_ny(  # type: ignore[attr-defined]
            faiss.swig_ptr(out), faiss.swig_ptr(query), self._xb, self.dim, self.ntotal
        )
        return out

    def cosines_of(self, vector: Vector, rows: np.ndarray) -> np.ndarray:
        """The query's inner product with the given rows, in their order."""
        out = np.empty(len(rows), dtype=np.float32)
        ids = np.ascontiguousarray(rows, dtype=np.int64)
        query = np.ascontiguousarray(vector, dtype=np.float32)
        faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]
            faiss.swig_ptr(out), faiss.swig_ptr(query), self._xb, faiss.swig_ptr(ids), self.dim, 1, len(ids)
        )
        return out

    def take(self, rows: np.ndarray) -> RowVectors:
        """A contiguous exact copy of some rows, whose `cosines` are those of `cosines_of(rows)`."""
        matrix = faiss.rev_swig_ptr(self._xb, self.ntotal * self.dim).reshape(self.ntotal, self.dim)
        index = faiss.IndexFlatIP(self.dim)
        index.add(np.ascontiguousarray(matrix[rows]))
        return RowVectors(index)

    def search(self, vectors: Matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For each query vector, the cosines and ids of the `k` rows the index finds
        nearest (approximately, for HNSW), best first; id -1 where it found fewer."""
        sims, ids = self.index.search(vectors, min(k, self.ntotal))
        return sims, ids


class EntryRows:
    """Where each entry's rows lie and of which kind, to take per-entry maxima.

    An entry's rows are contiguous and entries follow corpus order (bot.index.field_rows),
    so the maxima are segment reductions, over all entries or a chosen few."""

    def __init__(self, rows: Sequence[Row], entry_ids: Sequence[str]) -> None:
        position = {entry_id: i for i, entry_id in enumerate(entry_ids)}
        self.row_entry = np.array([position[r.entry_id] for r in rows], dtype=np.int64)
        if len(rows) and np.any(np.diff(self.row_entry) < 0):
            raise ValueError("an entry's rows must be contiguous, in corpus order")
        n = len(entry_ids)
        self.starts = np.searchsorted(self.row_entry, np.arange(n))
        self.ends = np.searchsorted(self.row_entry, np.arange(n), side="right")
        if np.any(self.starts == self.ends):
            raise ValueError("every entry needs at least one row")
        kinds = np.array([r.kind for r in rows])
        self._asked = np.isin(kinds, list(ASKED_KINDS))
        self._answer = kinds == "answer"
        self._chunk = kinds == "chunk"
        self.entries = n

    def signals(self, row_sims: np.ndarray) -> Signals:
        """Every entry's signals from the cosines of all rows."""
        return self._reduce(row_sims, self.starts, None)

    def rows_of(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the given entries, entry after entry, and where each entry's start."""
        lengths = self.ends[entries] - self.starts[entries]
        offsets = np.zeros(len(entries), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        rows = np.repeat(self.starts[entries] - offsets, lengths) + np.arange(int(lengths.sum()))
        return rows, offsets

    def signals_of(self, row_sims: np.ndarray, rows: np.ndarray, offsets: np.ndarray) -> Signals:
        """The given entries' signals from the cosines of their rows (`rows_of`)."""
        return self._reduce(row_sims, offsets, rows)

    def _reduce(self, row_sims: np.ndarray, offsets: np.ndarray, rows: np.ndarray | None) -> Signals:
        asked, answered, chunked = (
            (self._asked, self._answer, self._chunk)
            if rows is None
            else (self._asked[rows], self._answer[rows], self._chunk[rows])
        )
        answer = self._best(row_sims, answered, offsets)
        chunk = np.maximum(self._best(row_sims, chunked, offsets), answer)
        return self._best(row_sims, asked, offsets), answer, chunk

    @staticmethod
    def _best(row_sims: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Each segment's best score over its rows in `mask` (-1 where it has none)."""
        if not len(offsets):
            return np.zeros(0, dtype=np.float32)
        masked = np.where(mask, row_sims, np.float32(-1.0))
        return np.maximum(np.maximum.reduceat(masked, offsets), np.float32(-1.0))
