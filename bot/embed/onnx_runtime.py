"""Serve a sentence-transformers model through ONNX Runtime, without PyTorch.

Why: a query pass through ONNX Runtime takes about half the time of PyTorch's on this
kind of machine, with the same vectors (cosine above PARITY_COSINE, no ranking changes
over the evaluation sets), and a serving process that never imports torch holds a
fraction of the memory. The model is exported when the index is built, with mean pooling
and L2 normalization inside the graph.

The word-embedding table is most of the model (250k tokens × 384 for e5-small) and the
adaptation step never trains it, so the adapted and the base model share it exactly.
It is therefore kept out of the graphs: the graphs take token vectors, and one
`TokenInputs` per base model turns texts into them with the tokenizer and a table whose
rows are read from disk as tokens occur, so the table is never in the process's memory. int8 dynamic quantization was measured too and left out: it changed
the top answer for 4–8% of the evaluation queries.

PyTorch is needed to export (and to adapt the model), never to run the export.
"""

from __future__ import annotations

import json
import os
import warnings
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.embed.batching import MicroBatcher
from bot.embed.unigram import load_tokenizer
from bot.errors import ModelError
from bot.types import Matrix

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_OPSET = 17
_INPUTS = ("inputs_embeds", "attention_mask")
_PARITY_TEXTS = ("query: カスハラって何ですか", "passage: 事業者は必要な措置を講じるよう努めなければなりません。")
# The exported graph must give the PyTorch model's vectors: fp32 differs only by rounding.
PARITY_COSINE = 0.9999

# The files of a base model's shared inputs folder.
TABLE_FILE = "word_embeddings.f32"
TOKENIZER_FILE = "tokenizer.json"
INPUTS_FILE = "inputs.json"


def save_token_inputs(model: SentenceTransformer, folder: Path) -> None:
    """Write what turns texts into token vectors for `model` and every copy adapted
    from it: the tokenizer, the word-embedding table (raw float32 rows) and the padding
    and length settings."""
    import torch

    hf = check_pipeline(model).auto_model
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or tokenizer.pad_token_id is None:
        raise ModelError("ONNX serving needs a fast (tokenizers) tokenizer with a padding token")
    backend.save(str(folder / TOKENIZER_FILE))
    with torch.no_grad():
        table = hf.get_input_embeddings().weight.detach().to(torch.float32).cpu().numpy()
    np.ascontiguousarray(table, dtype="<f4").tofile(folder / TABLE_FILE)
    settings = {
        "pad_id": int(tokenizer.pad_token_id),
        "max_length": int(model.max_seq_length or 512),
        "rows": int(table.shape[0]),
        "dim": int(table.shape[1]),
    }
    (folder / INPUTS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def has_token_inputs(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (TABLE_FILE, TOKENIZER_FILE, INPUTS_FILE))


class RowFile:
    """A float32 table on disk, read a row at a time: a query needs a few dozen of its
    250k rows, so the rows stay in the file (and the page cache) instead of the process."""

    def __init__(self, path: Path, rows: int, dim: int) -> None:
        self._path = path
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)
        self.shape = (rows, dim)
        self._row_bytes = dim * 4
        if os.fstat(self._fd).st_size != rows * self._row_bytes:
            raise ModelError(f"{path} does not hold {rows} rows of {dim} float32 numbers")

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """`ids` (any shape) → their rows, shape ids.shape + (dim,)."""
        distinct, where = np.unique(ids, return_inverse=True)
        data = b"".join(os.pread(self._fd, self._row_bytes, int(i) * self._row_bytes) for i in distinct)
        table = np.frombuffer(data, dtype="<f4").reshape(len(distinct), self.shape[1])
        return table[where.reshape(ids.shape)].astype(np.float32, copy=False)

    def same_as(self, table: np.ndarray, block_rows: int = 8192) -> bool:
        """Whether `table` holds exactly these rows, compared a block at a time."""
        if table.shape != self.shape:
            return False
        dim = self.shape[1]
        for start in range(0, self.shape[0], block_rows):
            count = min(block_rows, self.shape[0] - start)
            block = np.fromfile(self._path, dtype="<f4", count=count * dim, offset=start * dim * 4).reshape(count, dim)
            if not np.array_equal(block, table[start : start + count]):
                return False
        return True


class TokenInputs:
    """Texts → (token vectors, attention mask), the inputs of every exported graph of
    one base model. Thread-safe: the tokenizer keeps no state between texts and the
    table is read with pread."""

    def __init__(self, folder: Path) -> None:
        try:
            settings = json.loads((folder / INPUTS_FILE).read_text(encoding="utf-8"))
            self.tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
            self.table = RowFile(folder / TABLE_FILE, int(settings["rows"]), int(settings["dim"]))
        except ModelError:
            raise
        except Exception as exc:  # a missing or broken file: OSError, ValueError, or tokenizers' own kind
            raise ModelError(f"cannot load the ONNX inputs in {folder} ({type(exc).__name__}: {exc})") from exc
        self._pad_id = int(settings["pad_id"])
        self.max_length = int(settings["max_length"])

    @property
    def dim(self) -> int:
        return self.table.shape[1]

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer.encode(texts, self.max_length)
        length = max(len(ids) for ids in encoded)
        ids = np.full((len(encoded), length), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), length), dtype=np.int64)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return {"inputs_embeds": self.table.rows(ids), "attention_mask": mask}


def export_onnx(model: SentenceTransformer, path: Path, inputs: TokenInputs) -> None:
    """Write `model` (transformer → mean pooling → normalize, word embeddings left out)
    as one ONNX graph whose output is the finished sentence vector, and check it against
    PyTorch on inputs made by `inputs`, which must hold this model's own table."""
    import torch

    hf = check_pipeline(model).auto_model
    with torch.no_grad():
        if not inputs.table.same_as(hf.get_input_embeddings().weight.cpu().numpy()):
            raise ModelError("the model's word embeddings differ from the shared table: they must not be trained")
    encoder = _pooled_encoder(hf)
    sample = {name: torch.from_numpy(np.array(value)) for name, value in inputs(list(_PARITY_TEXTS)).items()}
    previous = getattr(hf.config, "_attn_implementation", None)
    _set_attention(hf, "eager")  # plain MatMul/Softmax, which every ONNX Runtime build runs
    try:
        # The tracer warns about branches on padding that it fixes as constants; the
        # parity check below (on a padded batch) is what tells whether the graph is right.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                encoder,
                (sample["inputs_embeds"], sample["attention_mask"]),
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
    got = OnnxEncoder(path, inputs).encode(list(_PARITY_TEXTS))
    cosine = float((np.asarray(want, dtype=np.float32) * got).sum(axis=1).min())
    if cosine < PARITY_COSINE:
        path.unlink(missing_ok=True)
        raise ModelError(f"the ONNX export of the model disagrees with PyTorch (cosine {cosine:.6f})")


class OnnxEncoder:
    """Token inputs + ONNX Runtime session: texts in, normalized float32 rows out.

    Every pass runs on the session's own thread, which embeds the texts of all
    requests waiting at that moment in one batch (bot.embed.batching)."""

    def __init__(
        self, path: Path, inputs: TokenInputs, *, threads: int = 1, batch_size: int = 32, window_ms: float = 0.0
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread per session: the two models run side by side on the cores instead
        # of fighting over them (uvicorn, FAISS and the tokenizer share the machine).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own kinds for a missing or broken file
            raise ModelError(f"cannot load the ONNX model {path} ({type(exc).__name__}: {exc})") from exc
        self.inputs = inputs
        # The worker holds the session, never this object, so dropping the encoder stops it.
        self._batcher = MicroBatcher(partial(_run, session, inputs, batch_size), window_ms=window_ms, name=path.stem)

    def submit(self, texts: Sequence[str]) -> Future[Matrix]:
        return self._batcher.submit(texts)

    def encode(self, texts: Sequence[str]) -> Matrix:
        return self._batcher.encode(texts)


# A build's call with this many texts shows a progress bar.
PROGRESS_FROM = 2000


def _run(session: Any, inputs: TokenInputs, batch_size: int, texts: list[str]) -> Matrix:
    """Embed in batches of texts of similar length, so short texts are not padded to a
    long one's length (a build's rows mix one-line questions with long answers)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    starts: Iterable[int] = range(0, len(texts), batch_size)
    if len(texts) >= PROGRESS_FROM:
        from tqdm import tqdm

        starts = tqdm(starts, desc="Embedding", unit="batch")
    parts = []
    for start in starts:
        batch = order[start : start + batch_size]
        parts.append((batch, session.run(None, inputs([texts[i] for i in batch]))[0]))
    out = np.empty((len(texts), parts[0][1].shape[1]), dtype=np.float32)
    for rows, vectors in parts:
        out[rows] = vectors
    return out


def check_pipeline(model: SentenceTransformer) -> Any:
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
    """`hf` wrapped to take token vectors and return the L2-normalized mean of its
    output vectors (torch is imported here, not at module level, so serving never loads it)."""
    import torch

    class PooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf: Any = hf

        def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.hf(
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(attention_mask),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return PooledEncoder().eval()
