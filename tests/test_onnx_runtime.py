"""ONNX Runtime serves the same vectors and the same answers as PyTorch.

The session's engine runs on ONNX Runtime (the default); a second engine on the same
index folder runs the PyTorch models. fp32 ONNX differs from PyTorch only by the order
of float additions, about 1e-7 per component, so the cosine bound is 0.9999: far above
what any real difference (int8 quantization gave a median of 0.94) would reach.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.config import Settings
from bot.corpus import Corpus, load_corpus, load_eval_set
from bot.embed.onnx_runtime import PARITY_COSINE
from bot.embed.sentence_transformer import SentenceTransformerEmbedder
from bot.engine import Engine, ensure_index, load_embedder, load_engine
from bot.index import BASE_ONNX_FILE, MODEL_ONNX_FILE, build_index, onnx_exports, save_index
from bot.text import TextProcessor


# Every sixth evaluation query keeps the suite short; FAQBOT_TEST_FULL_AGREEMENT=1 checks all.
STRIDE = 1 if os.environ.get("FAQBOT_TEST_FULL_AGREEMENT") else 6


@pytest.fixture(scope="module")
def torch_engine(settings: Settings) -> Engine:
    torch_settings = settings.model_copy(update={"runtime": "torch"})
    return load_engine(torch_settings, load_embedder(torch_settings))


def models(engine: Engine) -> list[SentenceTransformerEmbedder]:
    found = [model for model, _ in onnx_exports(engine.faq_index)]
    assert all(isinstance(m, SentenceTransformerEmbedder) for m in found)
    return found  # type: ignore[return-value]


def test_the_service_runs_both_models_on_onnx_runtime(engine: Engine, torch_engine: Engine, settings: Settings) -> None:
    assert [m.runtime for m in models(engine)] == ["onnx", "onnx"]
    assert [m.runtime for m in models(torch_engine)] == ["torch", "torch"]
    assert (settings.index_dir / MODEL_ONNX_FILE).is_file() and (settings.index_dir / BASE_ONNX_FILE).is_file()


def test_vectors_agree_with_pytorch(engine: Engine, torch_engine: Engine, corpus: Corpus) -> None:
    texts = [q.query for q in load_eval_set(engine.settings.corpus_dir, corpus)][::STRIDE]
    passages = [e.answer for e in corpus.entries]
    for fast, slow in zip(models(engine), models(torch_engine), strict=True):
        for embed in ("embed_queries", "embed_passages"):
            batch = texts if embed == "embed_queries" else passages
            a, b = getattr(fast, embed)(batch), getattr(slow, embed)(batch)
            assert a.shape == b.shape and a.dtype == np.float32
            assert float((a * b).sum(axis=1).min()) >= PARITY_COSINE
    one = models(engine)[0].embed_queries(["カスハラって何ですか"])
    assert one.shape == (1, engine.embedder.dim) and abs(float(np.linalg.norm(one)) - 1.0) < 1e-5


def test_the_same_top_entry_on_the_whole_evaluation_set(engine: Engine, torch_engine: Engine, corpus: Corpus) -> None:
    queries = [q.query for q in load_eval_set(engine.settings.corpus_dir, corpus)][::STRIDE]
    assert len(queries) > 100
    differ = [q for q in queries if engine.retriever.rank(q)[0].entry.id != torch_engine.retriever.rank(q)[0].entry.id]
    assert differ == []


def test_an_index_without_exports_is_rebuilt_for_onnx_and_served_by_torch_meanwhile(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    small = tmp_path / "corpus"  # two entries: builds of seconds
    shutil.copytree(settings.corpus_dir, small)
    faq = yaml.safe_load((small / "faq.yaml").read_text(encoding="utf-8"))
    (small / "faq.yaml").write_text(yaml.safe_dump({"entries": faq["entries"][:2]}, allow_unicode=True), encoding="utf-8")
    local = settings.model_copy(update={"corpus_dir": small, "index_dir": tmp_path / "faq", "adapt_epochs": 0})
    corpus = load_corpus(small)
    embedder = load_embedder(local)
    text = TextProcessor(corpus.synonyms)
    save_index(build_index(corpus, embedder, text, None), local.index_dir)  # as FAQBOT_RUNTIME=torch builds
    assert not (local.index_dir / MODEL_ONNX_FILE).exists()
    with caplog.at_level(logging.WARNING, logger="bot.engine"):
        served = load_engine(local, embedder)
    assert served.embedder.runtime == "torch"  # type: ignore[attr-defined]
    assert "no ONNX export" in caplog.text
    assert ensure_index(local.model_copy(update={"runtime": "torch"}), corpus, embedder, text) is False
    assert ensure_index(local, corpus, embedder, text) is True
    assert (local.index_dir / MODEL_ONNX_FILE).is_file() and not (local.index_dir / BASE_ONNX_FILE).exists()
    assert load_engine(local, embedder).embedder.runtime == "onnx"  # type: ignore[attr-defined]
