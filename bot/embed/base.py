"""The embedder contract: what the index and retriever need from a model."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
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


def submit_queries(embedder: Embedder, texts: Sequence[str]) -> Future[Matrix]:
    """Start a query pass: at once on the model's own thread where it has one (an
    embedder with `submit_queries`, bot.embed.batching), so the caller can start another
    model's pass before waiting; otherwise run it here."""
    submit = getattr(embedder, "submit_queries", None)  # not isinstance: a Protocol check costs more than a pass of FAISS
    if submit is not None:
        return submit(texts)  # type: ignore[no-any-return]
    done: Future[Matrix] = Future()
    done.set_result(embedder.embed_queries(texts))
    return done
