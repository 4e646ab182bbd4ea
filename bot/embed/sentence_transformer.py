"""Embedder backed by a local or named sentence-transformers model.

A local folder's prefixes and dimension are read from its configuration, and the
PyTorch weights are loaded only when something runs them: a service whose queries run
on ONNX Runtime never imports torch, which alone holds more memory than both models.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.embed.onnx_runtime import PROGRESS_FROM, OnnxEncoder, TokenInputs, export_onnx
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
        self._torch: SentenceTransformer | None = None
        described = _describe(Path(model))
        if described is None:
            self._torch = _load(model)
            described = _prompts_and_dim(self._torch, model)
        self._setup(query_prefix, passage_prefix, batch_size, *described)

    @property
    def _model(self) -> SentenceTransformer:
        """The PyTorch model, loaded on first use: never, in a service on ONNX Runtime,
        and read again from disk for a build after ONNX Runtime took over."""
        if self._torch is None:
            log.info("loading the PyTorch weights of %s", self._name)
            self._torch = _load(self._name)
        return self._torch

    def load_weights(self) -> None:
        """Load the PyTorch weights now, so a missing or broken model fails at start-up."""
        _ = self._model

    def _setup(
        self, query_prefix: str | None, passage_prefix: str | None, batch_size: int, prompts: dict[str, str], dim: int
    ) -> None:
        self._query_prefix = query_prefix if query_prefix is not None else prompts.get("query", "")
        self._passage_prefix = passage_prefix if passage_prefix is not None else prompts.get("passage", "")
        self._batch_size = batch_size
        self._dim = dim

    @property
    def query_prefix(self) -> str:
        return self._query_prefix

    @property
    def passage_prefix(self) -> str:
        return self._passage_prefix

    def copy_model(self) -> SentenceTransformer:
        """A deep copy of the underlying model, to train without touching this one. The
        word-embedding table, most of the model and never trained, is shared, not copied."""
        model = self._model
        auto_model = getattr(model[0], "auto_model", None)
        table = auto_model.get_input_embeddings().weight if auto_model is not None else None
        return copy.deepcopy(model, memo={id(table): table} if table is not None else None)

    def with_model(self, model: SentenceTransformer) -> SentenceTransformerEmbedder:
        """The same prefixes and batching around other weights (an adapted copy)."""
        other = self.unloaded(f"{self._name} (adapted)")
        other._torch = model
        return other

    def save(self, folder: Path) -> None:
        self._model.save(str(folder))

    def unloaded(self, model: str) -> SentenceTransformerEmbedder:
        """An embedder of weights at `model` with these prefixes and this dimension, which
        loads nothing until something runs PyTorch: an adapted model served by ONNX Runtime."""
        other = object.__new__(SentenceTransformerEmbedder)
        other._name = model
        other._torch = None
        other._onnx = None
        other._setup(self._query_prefix, self._passage_prefix, self._batch_size, {}, self._dim)
        return other

    def export_onnx(self, path: Path, inputs: TokenInputs) -> None:
        """Write this model as an ONNX graph that gives the same vectors (see bot.embed.onnx_runtime)."""
        export_onnx(self._model, path, inputs)

    @property
    def torch_model(self) -> SentenceTransformer:
        return self._model

    def use_onnx(self, path: Path, inputs: TokenInputs, *, threads: int = 1, window_ms: float = 0.0) -> None:
        """Embed through ONNX Runtime from now on, and let the PyTorch weights go (a build
        loads them again)."""
        self._onnx = OnnxEncoder(path, inputs, threads=threads, batch_size=self._batch_size, window_ms=window_ms)
        self._torch = None

    def submit_queries(self, texts: Sequence[str]) -> Future[Matrix]:
        """Start embedding `texts` as queries; on ONNX Runtime the pass runs on the model's
        own thread (batched with other requests), so two models can run at once."""
        prefixed = [self._query_prefix + t for t in texts]
        if self._onnx is not None and prefixed:
            return self._onnx.submit(prefixed)
        done: Future[Matrix] = Future()
        done.set_result(self._encode(prefixed))
        return done

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
            show_progress_bar=len(texts) >= PROGRESS_FROM,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt"})
_EXPORTABLE = ["Transformer", "Pooling", "Normalize"]


def has_weights(folder: Path) -> bool:
    return any(path.suffix in _WEIGHT_SUFFIXES for path in Path(folder).rglob("*"))


def _describe(folder: Path) -> tuple[dict[str, str], int] | None:
    """Prompts and dimension of a local Transformer → mean Pooling → Normalize folder,
    from its configuration files alone (as sentence-transformers 3 to 6 write them);
    None for anything else, which is then loaded to ask."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        if [str(m.get("type")).rsplit(".", 1)[-1] for m in modules] != _EXPORTABLE:
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        prompts_file = folder / "config_sentence_transformers.json"
        prompts = json.loads(prompts_file.read_text(encoding="utf-8")).get("prompts", {}) if prompts_file.is_file() else {}
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError):
        return None
    dim = pooling.get("word_embedding_dimension", pooling.get("embedding_dimension"))
    mean = pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True
    if not isinstance(dim, int) or not mean or not isinstance(prompts, dict):
        return None
    return {str(k): str(v) for k, v in prompts.items()}, dim


def _prompts_and_dim(model: SentenceTransformer, name: str) -> tuple[dict[str, str], int]:
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    if not dim:
        raise ModelError(f"model {name!r} does not report an embedding dimension")
    return dict(getattr(model, "prompts", {}) or {}), int(dim)


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
