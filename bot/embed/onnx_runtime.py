"""Serve a sentence-transformers model through ONNX Runtime.

Why: a query pass through ONNX Runtime takes about half the time of PyTorch's on this
kind of machine, with the same vectors (cosine above PARITY_COSINE, no ranking changes
over the evaluation sets). The model is exported once, when the index is built, with mean
pooling and L2 normalization inside the graph, so serving is tokenizer + one session
run. int8 dynamic quantization was measured too and left out: it changed the top
answer for 4–8% of the evaluation queries.

PyTorch is still needed to export (and to adapt the model), never to run the export.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.errors import ModelError
from bot.types import Matrix

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_OPSET = 17
_INPUTS = ("input_ids", "attention_mask")
_PARITY_TEXTS = ("query: カスハラって何ですか", "passage: 事業者は必要な措置を講じるよう努めなければなりません。")
# The exported graph must give the PyTorch model's vectors: fp32 differs only by rounding.
PARITY_COSINE = 0.9999


def export_onnx(model: SentenceTransformer, path: Path) -> None:
    """Write `model` (transformer → mean pooling → normalize) as one ONNX graph whose
    output is the finished sentence vector, and check it against PyTorch."""
    import torch

    hf = _check_pipeline(model).auto_model
    encoder = _pooled_encoder(hf)
    sample = model.tokenizer(list(_PARITY_TEXTS), padding=True, return_tensors="pt")
    previous = getattr(hf.config, "_attn_implementation", None)
    _set_attention(hf, "eager")  # plain MatMul/Softmax, which every ONNX Runtime build runs
    try:
        # The tracer warns about branches on padding that it fixes as constants; the
        # parity check below (on a padded batch) is what tells whether the graph is right.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                encoder,
                (sample["input_ids"], sample["attention_mask"]),
                str(path),
                input_names=list(_INPUTS),
                output_names=["sentence_embedding"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in _INPUTS}
                | {"sentence_embedding": {0: "batch"}},
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        if previous:
            _set_attention(hf, previous)
    want = model.encode(list(_PARITY_TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    got = OnnxEncoder(path, model.tokenizer, model.max_seq_length or 512).encode(list(_PARITY_TEXTS))
    cosine = float((np.asarray(want, dtype=np.float32) * got).sum(axis=1).min())
    if cosine < PARITY_COSINE:
        path.unlink(missing_ok=True)
        raise ModelError(f"the ONNX export of the model disagrees with PyTorch (cosine {cosine:.6f})")


class OnnxEncoder:
    """Tokenizer + ONNX Runtime session: texts in, normalized float32 rows out."""

    def __init__(self, path: Path, tokenizer: Any, max_seq_length: int, *, threads: int = 1, batch_size: int = 32) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread per session: requests run side by side on the cores instead of
        # fighting over them (uvicorn, FAISS and the other model share the machine).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own kinds for a missing or broken file
            raise ModelError(f"cannot load the ONNX model {path} ({type(exc).__name__}: {exc})") from exc
        self.tokenizer = tokenizer
        self._max_length = max_seq_length
        self._batch_size = batch_size

    def encode(self, texts: list[str]) -> Matrix:
        parts = []
        for start in range(0, len(texts), self._batch_size):
            batch = self.tokenizer(
                texts[start : start + self._batch_size],
                padding=True,
                truncation=True,
                max_length=self._max_length,
                return_tensors="np",
            )
            feed = {name: batch[name].astype(np.int64) for name in _INPUTS}
            parts.append(self._session.run(None, feed)[0])
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _check_pipeline(model: SentenceTransformer) -> Any:
    """The export puts mean pooling and normalization in the graph: refuse other pipelines."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if names != ["Transformer", "Pooling", "Normalize"]:
        raise ModelError(f"cannot export a {' → '.join(names)} model to ONNX (expected Transformer → Pooling → Normalize)")
    pooling: Any = modules[1]
    config = pooling.get_config_dict()
    mode = config.get("pooling_mode") or ("mean" if config.get("pooling_mode_mean_tokens") else None)
    if mode != "mean":
        raise ModelError(f"cannot export a model with {mode!r} pooling to ONNX (mean pooling only)")
    return modules[0]


def _set_attention(hf: Any, implementation: str) -> None:
    setter = getattr(hf, "set_attn_implementation", None)
    if setter is not None:
        setter(implementation)
    else:
        hf.config._attn_implementation = implementation


def _pooled_encoder(hf: Any) -> Any:
    """`hf` wrapped to return the L2-normalized mean of its token vectors (torch is
    imported here, not at module level, so serving never loads it)."""
    import torch

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf: Any = hf

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.hf(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return PooledEncoder().eval()
