"""Embedder backed by a local or named sentence-transformers model."""

from __future__ import annotations

import copy
import gc
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.embed.onnx_runtime import OnnxEncoder, export_onnx
from bot.errors import ModelError
from bot.types import Matrix

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

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
        self._name = model
        self._onnx: OnnxEncoder | None = None
        self._torch: SentenceTransformer | None = _load(model)
        self._setup(query_prefix, passage_prefix, batch_size)

    @property
    def _model(self) -> SentenceTransformer:
        """The PyTorch model: kept until ONNX Runtime takes over the queries, then read
        from disk again only to adapt or save (a build)."""
        if self._torch is None:
            log.info("loading the PyTorch weights of %s again for a build", self._name)
            self._torch = _load(self._name)
        return self._torch

    def _setup(self, query_prefix: str | None, passage_prefix: str | None, batch_size: int) -> None:
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prefix = query_prefix if query_prefix is not None else prompts.get("query", "")
        self._passage_prefix = passage_prefix if passage_prefix is not None else prompts.get("passage", "")
        self._batch_size = batch_size
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelError(f"model {self._name!r} does not report an embedding dimension")
        self._dim = int(dim)

    @property
    def query_prefix(self) -> str:
        return self._query_prefix

    @property
    def passage_prefix(self) -> str:
        return self._passage_prefix

    def copy_model(self) -> SentenceTransformer:
        """A deep copy of the underlying model, to train without touching this one."""
        return copy.deepcopy(self._model)

    def with_model(self, model: SentenceTransformer) -> SentenceTransformerEmbedder:
        """The same prefixes and batching around other weights (an adapted copy)."""
        other = object.__new__(SentenceTransformerEmbedder)
        other._name = f"{self._name} (adapted)"
        other._torch = model
        other._onnx = None
        other._setup(self._query_prefix, self._passage_prefix, self._batch_size)
        return other

    def save(self, folder: Path) -> None:
        self._model.save(str(folder))

    def export_onnx(self, path: Path) -> None:
        """Write this model as an ONNX graph that gives the same vectors (see bot.embed.onnx_runtime)."""
        export_onnx(self._model, path)

    def use_onnx(self, path: Path, threads: int = 1) -> None:
        """Embed through ONNX Runtime from now on, and let the PyTorch weights go (a build
        loads them again)."""
        model = self._model
        self._onnx = OnnxEncoder(
            path, model.tokenizer, model.max_seq_length or 512, threads=threads, batch_size=self._batch_size
        )
        self._torch = None
        gc.collect()

    @property
    def runtime(self) -> str:
        return "onnx" if self._onnx is not None else "torch"

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
        if self._onnx is not None:
            return self._onnx.encode(texts)
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _load(model: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    try:
        # local_files_only: nothing is ever downloaded at run time.
        return SentenceTransformer(model, device="cpu", local_files_only=True)
    except Exception as exc:  # the library raises many kinds; the message is what matters
        raise ModelError(
            f"cannot load model {model!r} ({type(exc).__name__}: {exc}). For the default model "
            "run `python -m bot export-model` (or `make run`); otherwise set FAQBOT_MODEL to a "
            "sentence-transformers folder or a model already in the local cache"
        ) from exc


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
