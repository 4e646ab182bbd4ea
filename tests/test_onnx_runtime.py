"""ONNX Runtime serves the same vectors and the same answers as PyTorch, without torch.

The session's engine runs on ONNX Runtime (the default); a second engine, on an index
built for PyTorch from the same corpus, runs the PyTorch models. fp32 ONNX differs from
PyTorch only by the order of float additions, about 1e-7 per component, so the cosine
bound is 0.9999: far above what any real difference (int8 quantization gave a median of
0.94) would reach.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import share_runtime

from bot.config import Settings
from bot.corpus import Corpus, load_corpus, load_eval_set
from bot.embed.base import Embedder
from bot.embed.onnx_runtime import PARITY_COSINE
from bot.embed.sentence_transformer import SentenceTransformerEmbedder, has_weights
from bot.engine import Engine, ensure_index, load_embedder, load_engine
from bot.index import BASE_ONNX_FILE, MODEL_FOLDER, MODEL_ONNX_FILE, build_index, onnx_exports, runtime_folder, save_index
from bot.text import TextProcessor


# Every sixth evaluation query keeps the suite short; FAQBOT_TEST_FULL_AGREEMENT=1 checks all.
STRIDE = 1 if os.environ.get("FAQBOT_TEST_FULL_AGREEMENT") else 6


def unadapted(settings: Settings, corpus: Corpus, folder: Path, runtime: str) -> Engine:
    """An engine on the base model alone, indexed for `runtime`: builds of seconds."""
    if runtime == "onnx":
        share_runtime(folder, settings)
    local = settings.model_copy(update={"runtime": runtime, "index_dir": folder / "faq", "adapt_epochs": 0})
    embedder = load_embedder(local)
    ensure_index(local, corpus, embedder, TextProcessor(corpus.synonyms))
    return load_engine(local, embedder)


@pytest.fixture(scope="module")
def torch_engine(settings: Settings, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """PyTorch and ONNX Runtime compared on the same model: the base model, since an index
    for ONNX Runtime keeps no PyTorch copy of its adapted one (whose export is checked
    against PyTorch when it is written, by the same code as the base model's)."""
    return unadapted(settings, corpus, tmp_path_factory.mktemp("torch"), "torch")


@pytest.fixture(scope="module")
def onnx_engine(settings: Settings, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Engine:
    return unadapted(settings, corpus, tmp_path_factory.mktemp("onnx"), "onnx")


def models(engine: Engine) -> list[SentenceTransformerEmbedder]:
    found = [model for model, _ in onnx_exports(engine.settings.index_dir, engine.faq_index)]
    assert all(isinstance(m, SentenceTransformerEmbedder) for m in found)
    return found  # type: ignore[return-value]


def test_the_service_runs_both_models_on_onnx_runtime(engine: Engine, torch_engine: Engine, settings: Settings) -> None:
    assert [m.runtime for m in models(engine)] == ["onnx", "onnx"]
    assert [m.runtime for m in models(torch_engine)] == ["torch"]
    shared = runtime_folder(settings.index_dir, engine.faq_index.base.embedder)  # type: ignore[union-attr]
    assert (settings.index_dir / MODEL_ONNX_FILE).is_file() and (shared / BASE_ONNX_FILE).is_file()


def test_an_index_for_onnx_runtime_keeps_no_pytorch_weights_and_no_word_table(settings: Settings) -> None:
    """The adapted model is only its graph (word embeddings shared with the base model's
    folder beside it), so the index folder stays small."""
    assert not has_weights(settings.index_dir / MODEL_FOLDER)
    total = sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file())
    table_bytes = 250_037 * 384 * 4
    assert total < table_bytes / 2


def test_the_service_never_imports_torch(settings: Settings, engine: Engine) -> None:
    """A service on ONNX Runtime loads its models and answers without PyTorch in the process."""
    script = (
        "import sys, json\n"
        "from bot.config import Settings\n"
        "from bot.engine import load_engine\n"
        "engine = load_engine(Settings())\n"
        "reply = engine.answerer.ask('カスハラって何ですか')\n"
        "print(json.dumps({'faq': reply.faq.id if reply.faq else None, 'torch': 'torch' in sys.modules,\n"
        "  'st': 'sentence_transformers' in sys.modules}))\n"
    )
    env = {
        **os.environ,
        "FAQBOT_CORPUS_DIR": str(settings.corpus_dir),
        "FAQBOT_INDEX_DIR": str(settings.index_dir),
        "FAQBOT_MODEL": settings.model,
        "FAQBOT_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"faq": engine.answerer.ask("カスハラって何ですか").faq.id, "torch": False, "st": False}  # type: ignore[union-attr]


def test_vectors_agree_with_pytorch(onnx_engine: Engine, torch_engine: Engine, corpus: Corpus) -> None:
    engine = onnx_engine
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


def test_the_same_top_entry_on_the_whole_evaluation_set(onnx_engine: Engine, torch_engine: Engine, corpus: Corpus) -> None:
    engine = onnx_engine
    queries = [q.query for q in load_eval_set(engine.settings.corpus_dir, corpus)][::STRIDE]
    assert len(queries) > 100
    differ = [q for q in queries if engine.retriever.rank(q)[0].entry.id != torch_engine.retriever.rank(q)[0].entry.id]
    assert differ == []


def two_entries(tmp_path: Path, settings: Settings, adapt_epochs: float) -> tuple[Settings, Corpus, Embedder, TextProcessor]:
    """Settings for a two-entry copy of the corpus (builds of seconds), with its parts."""
    small = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, small)
    faq = yaml.safe_load((small / "faq.yaml").read_text(encoding="utf-8"))
    (small / "faq.yaml").write_text(yaml.safe_dump({"entries": faq["entries"][:2]}, allow_unicode=True), encoding="utf-8")
    local = settings.model_copy(update={"corpus_dir": small, "index_dir": tmp_path / "faq", "adapt_epochs": adapt_epochs})
    corpus = load_corpus(small)
    return local, corpus, load_embedder(local), TextProcessor(corpus.synonyms)


def test_an_index_without_exports_is_rebuilt_for_onnx_and_served_by_torch_meanwhile(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    local, corpus, embedder, text = two_entries(tmp_path, settings, adapt_epochs=0)
    save_index(build_index(corpus, embedder, text, None), local.index_dir)  # as FAQBOT_RUNTIME=torch builds
    assert not (local.index_dir / MODEL_ONNX_FILE).exists()
    with caplog.at_level(logging.WARNING, logger="bot.engine"):
        served = load_engine(local, embedder)
    assert served.embedder.runtime == "torch"  # type: ignore[attr-defined]
    assert "no ONNX export" in caplog.text
    assert ensure_index(local.model_copy(update={"runtime": "torch"}), corpus, embedder, text) is False
    assert ensure_index(local, corpus, embedder, text) is True
    # Not adapted: the index's model is the base model, served from its shared export.
    assert not (local.index_dir / MODEL_ONNX_FILE).exists()
    assert (runtime_folder(local.index_dir, embedder) / BASE_ONNX_FILE).is_file()
    assert load_engine(local, embedder).embedder.runtime == "onnx"  # type: ignore[attr-defined]


def test_an_index_built_for_onnx_runtime_is_rebuilt_for_torch(beside_session: Path, settings: Settings) -> None:
    """FAQBOT_RUNTIME=torch on an index that kept no PyTorch weights rebuilds it instead of failing."""
    local, corpus, embedder, text = two_entries(beside_session, settings, adapt_epochs=0.2)
    assert ensure_index(local, corpus, embedder, text) is True
    assert not has_weights(local.index_dir / MODEL_FOLDER)
    as_torch = local.model_copy(update={"runtime": "torch"})
    assert ensure_index(as_torch, corpus, embedder, text) is True
    assert has_weights(local.index_dir / MODEL_FOLDER)
    assert load_engine(as_torch, embedder).answerer.ask("カスハラって何ですか").faq is not None


def test_an_onnx_build_embeds_its_rows_as_pytorch_does(onnx_engine: Engine, torch_engine: Engine) -> None:
    """The build embeds the rows through the same graph the service queries with."""
    for which in ("index", "unanswered"):
        fast, slow = getattr(onnx_engine.faq_index, which), getattr(torch_engine.faq_index, which)
        a, b = fast.reconstruct_n(0, fast.ntotal), slow.reconstruct_n(0, slow.ntotal)
        assert a.shape == b.shape and len(a) > 0
        assert float((a * b).sum(axis=1).min()) >= PARITY_COSINE


def test_a_build_without_adaptation_on_onnx_runtime_never_imports_torch(onnx_engine: Engine) -> None:
    """Once the base model's export is in place, a corpus edit on an unadapted index costs
    ONNX passes only."""
    script = (
        "import sys\n"
        "from bot.config import Settings\n"
        "from bot.engine import build_for\n"
        "assert build_for(Settings(), force=True)\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    local = onnx_engine.settings
    env = {
        **os.environ,
        "FAQBOT_CORPUS_DIR": str(local.corpus_dir),
        "FAQBOT_INDEX_DIR": str(local.index_dir.parent / "again"),  # beside it: the same shared runtime folder
        "FAQBOT_MODEL": local.model,
        "FAQBOT_ADAPT_EPOCHS": "0",
        "FAQBOT_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
