"""The embedder contract: what the index and retriever need from a model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bot.types import Matrix


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 rows.

    Prefix conventions (e5's "query: " / "passage: ") live inside implementations,
    so callers only say whether a text is asked or answered.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def fingerprint(self) -> dict[str, object]:
        """Everything about the model that changes its vectors, for the index manifest."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Matrix: ...

    def embed_passages(self, texts: Sequence[str]) -> Matrix: ...
