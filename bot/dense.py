"""The dense signals of a query vector, one number per entry: its best cosine to the
entry's asked rows (question, alternates, kana spellings), to its answer, and to a piece
of its answer (the answer itself when it has no pieces).

Cosines are FAISS's own inner-product kernel run over the row vectors where the index
keeps them: the values an exhaustive search returns, without sorting every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from bot.index import ASKED_KINDS, Row
from bot.types import Vector

Signals = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Question, answer and chunk cosines, one per entry."""


class RowVectors:
    """One model's row vectors, read in place from its FAISS index."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        flat: Any = index
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


class EntryRows:
    """Where each entry's rows lie and of which kind, to take per-entry maxima.

    An entry's rows are contiguous and entries follow corpus order (bot.index.field_rows),
    so the maxima are segment reductions."""

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
        answer = self._best(row_sims, self._answer, self.starts)
        chunk = np.maximum(self._best(row_sims, self._chunk, self.starts), answer)
        return self._best(row_sims, self._asked, self.starts), answer, chunk

    @staticmethod
    def _best(row_sims: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Each segment's best score over its rows in `mask` (-1 where it has none)."""
        if not len(offsets):
            return np.zeros(0, dtype=np.float32)
        masked = np.where(mask, row_sims, np.float32(-1.0))
        return np.maximum(np.maximum.reduceat(masked, offsets), np.float32(-1.0))
