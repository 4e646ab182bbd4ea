"""Embedder backed by a local or named sentence-transformers model."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.errors import ModelError
from bot.types import Matrix

log = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    """Loads the model once; prefixes come from settings or the model's own prompts."""

    def __init__(
        self,
        model: str,
        *,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = 32,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self._name = model
        try:
            # local_files_only: nothing is ever downloaded at run time.
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many kinds; the message is what matters
            raise ModelError(
                f"cannot load model {model!r} ({type(exc).__name__}: {exc}). For the default model "
                "run `python -m bot export-model` (or `make run`); otherwise set FAQBOT_MODEL to a "
                "sentence-transformers folder or a model already in the local cache"
            ) from exc
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prefix = query_prefix if query_prefix is not None else prompts.get("query", "")
        self._passage_prefix = passage_prefix if passage_prefix is not None else prompts.get("passage", "")
        self._batch_size = batch_size
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelError(f"model {model!r} does not report an embedding dimension")
        self._dim = int(dim)

    @property
    def model_id(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self._name,
            "dim": self._dim,
            "query_prefix": self._query_prefix,
            "passage_prefix": self._passage_prefix,
            "files": _folder_digest(Path(self._name)),
        }

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._encode([self._query_prefix + t for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._encode([self._passage_prefix + t for t in texts])

    def _encode(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _folder_digest(folder: Path) -> str | None:
    """A cheap identity for a local model folder: names, sizes and small config files."""
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(str(path.stat().st_size).encode())
            if path.suffix == ".json" and path.stat().st_size < 1_000_000:
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
