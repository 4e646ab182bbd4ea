from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from bot.config import Settings
from bot.corpus import Corpus, load_corpus
from bot.embed.adapt import training_pairs
from bot.embed.base import Embedder
from bot.embed.sentence_transformer import SentenceTransformerEmbedder
from bot.engine import Engine, ensure_index, load_embedder, load_engine
from bot.errors import IndexMismatchError, IndexMissingError
from bot.index import (
    BASE_INDEX_FILE,
    CHUNK_CHARS,
    MANIFEST_FILE,
    MODEL_FOLDER,
    MODEL_ONNX_FILE,
    RUNTIME_FOLDER,
    FaqIndex,
    Row,
    build_index,
    expected_manifest,
    load_index,
    read_manifest,
    save_index,
)
from bot.text import TextProcessor, split_passage


def test_manifest_records_what_the_vectors_depend_on(engine) -> None:  # type: ignore[no-untyped-def]
    manifest = engine.faq_index.manifest
    assert manifest["corpus_hash"] == engine.corpus.content_hash
    assert manifest["dim"] == 384
    assert manifest["model"]["query_prefix"] == "query: "
    assert {"faiss-cpu", "sentence-transformers", "fugashi"} <= set(manifest["libraries"])
    assert manifest["built_at"].endswith("+09:00")
    chunks = sum(len(split_passage(e.answer, CHUNK_CHARS)) for e in engine.corpus.entries
                 if len(split_passage(e.answer, CHUNK_CHARS)) > 1)
    kana = sum(engine.text.kana_spelling(q) != engine.text.fold(q)
               for e in engine.corpus.entries for q in (e.question, *e.alternates))
    n_rows = sum(2 + len(e.alternates) for e in engine.corpus.entries) + kana + chunks
    assert chunks > 0, "the two-paragraph answers are also indexed in pieces"
    assert kana > len(engine.corpus.entries), "questions written with kanji are also indexed in kana"
    assert engine.faq_index.index.ntotal == manifest["rows"] == n_rows
    assert engine.faq_index.unanswered.ntotal == manifest["unanswered"] == len(engine.corpus.unanswered) > 0


@pytest.fixture(scope="module")
def unadapted(corpus: Corpus, embedder: Embedder) -> FaqIndex:
    """The real corpus indexed without adaptation, built once for the tests that save it."""
    return build_index(corpus, embedder, TextProcessor(corpus.synonyms))


def test_missing_index_names_the_build_command(tmp_path: Path, corpus: Corpus, embedder: Embedder) -> None:
    with pytest.raises(IndexMissingError, match="python -m bot build"):
        load_index(tmp_path / "none", expected_manifest(corpus, embedder, None), embedder)


def test_index_of_another_corpus_is_refused(tmp_path: Path, settings: Settings, embedder: Embedder, unadapted: FaqIndex) -> None:
    folder = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, folder)
    save_index(unadapted, tmp_path / "faq")
    faq = folder / "faq.yaml"
    faq.write_text(faq.read_text(encoding="utf-8").replace("カスハラって何？", "カスハラって何でしょう？"), encoding="utf-8")
    changed = load_corpus(folder)
    with pytest.raises(IndexMismatchError, match=r"corpus content .*python -m bot build"):
        load_index(tmp_path / "faq", expected_manifest(changed, embedder, None), embedder)
    stale = settings.model_copy(update={"corpus_dir": folder, "index_dir": tmp_path / "faq"})
    with pytest.raises(IndexMismatchError):
        load_engine(stale, embedder)


def test_index_of_another_model_setting_is_refused(tmp_path: Path, corpus: Corpus, embedder: Embedder, unadapted: FaqIndex) -> None:
    save_index(unadapted, tmp_path / "faq")
    expected = expected_manifest(corpus, embedder, None)
    other = {**expected, "model": {**expected["model"], "query_prefix": "検索: "}}  # type: ignore[dict-item]
    with pytest.raises(IndexMismatchError, match="embedding model"):
        load_index(tmp_path / "faq", other, embedder)


def test_build_only_when_stale_and_writes_atomically(beside_session: Path, settings: Settings, corpus: Corpus, embedder: Embedder) -> None:
    tmp_path = beside_session
    local = settings.model_copy(update={"index_dir": tmp_path / "faq", "adapt_epochs": 0})
    text = TextProcessor(corpus.synonyms)
    assert ensure_index(local, corpus, embedder, text) is True
    first = read_manifest(local.index_dir)
    assert ensure_index(local, corpus, embedder, text) is False
    assert read_manifest(local.index_dir) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faq", RUNTIME_FOLDER], "no temporary folders left behind"
    assert (local.index_dir / MANIFEST_FILE).is_file()


def test_failed_write_keeps_the_previous_index(tmp_path: Path, unadapted: FaqIndex) -> None:
    save_index(unadapted, tmp_path / "faq")
    before = (tmp_path / "faq" / MANIFEST_FILE).read_text()
    broken = replace(unadapted, manifest={**unadapted.manifest, "unserializable": object()})  # json.dumps fails mid-write
    with pytest.raises(TypeError):
        save_index(broken, tmp_path / "faq")
    assert (tmp_path / "faq" / MANIFEST_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faq"]


def test_default_index_carries_its_adapted_model(settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
    assert settings.adaptation is not None, "adaptation is on by default"
    assert engine.faq_index.manifest["adaptation"] == settings.adaptation.as_manifest()
    # Served by ONNX Runtime: the adapted model is its graph, with no PyTorch weights.
    assert (settings.index_dir / MODEL_ONNX_FILE).is_file()
    assert not (settings.index_dir / MODEL_FOLDER / "model.safetensors").exists()
    assert engine.embedder is engine.faq_index.embedder
    # The loaded copy embeds queries exactly as the build embedded the questions.
    stored = _question_vectors(engine.faq_index.index, engine.faq_index.rows)
    fresh = engine.embedder.embed_queries([engine.text.fold(e.question) for e in engine.corpus.entries])
    assert np.allclose(stored, fresh, atol=1e-4)


def test_default_index_keeps_the_base_models_vectors(engine, embedder: Embedder) -> None:  # type: ignore[no-untyped-def]
    base = engine.faq_index.base
    assert base is not None and base.embedder is embedder
    assert base.index.ntotal == engine.faq_index.index.ntotal
    stored = _question_vectors(base.index, engine.faq_index.rows)
    questions = [engine.text.fold(e.question) for e in engine.corpus.entries]
    assert np.allclose(stored, embedder.embed_queries(questions), atol=1e-4)
    assert not np.allclose(stored, engine.embedder.embed_queries(questions), atol=1e-2), "two models, two sets of vectors"


def test_adaptation_pulls_questions_toward_their_own_answers(
    settings: Settings, corpus: Corpus, embedder: SentenceTransformerEmbedder, engine: Engine
) -> None:
    # The session index was built with the default adaptation; compare its model with the base.
    text = TextProcessor(corpus.synonyms)
    pairs = training_pairs(corpus, text)
    adapted = engine.faq_index.embedder
    assert adapted is not embedder

    def own_answer_rank(model: Embedder) -> tuple[float, float]:
        asked = model.embed_queries([p.asked for p in pairs])
        answers = model.embed_passages([text.fold(e.answer) for e in corpus.entries])
        sims = asked @ answers.T
        own = sims[np.arange(len(pairs)), [p.entry for p in pairs]]
        others = np.where(np.eye(len(corpus.entries), dtype=bool)[[p.entry for p in pairs]], -np.inf, sims).max(axis=1)
        return float((own > others).mean()), float((own - others).mean())

    base_top1, base_margin = own_answer_rank(embedder)
    top1, margin = own_answer_rank(adapted)
    assert top1 >= base_top1 and margin > base_margin + 0.02
    probe = ["カスハラって何？"]
    fresh = load_embedder(settings)
    # The session base model may run on ONNX Runtime, the fresh one on PyTorch: equal up to rounding.
    assert np.allclose(embedder.embed_queries(probe), fresh.embed_queries(probe), atol=1e-5), "the base model is left untouched"


def test_index_with_other_adaptation_settings_is_refused(settings: Settings, corpus: Corpus, embedder: Embedder, engine) -> None:  # type: ignore[no-untyped-def]
    other = settings.model_copy(update={"adapt_epochs": settings.adapt_epochs + 1})
    assert other.adaptation is not None
    with pytest.raises(IndexMismatchError, match="adaptation"):
        load_index(settings.index_dir, expected_manifest(corpus, embedder, other.adaptation), embedder)
    unadapted = settings.model_copy(update={"adapt_epochs": 0})
    assert unadapted.adaptation is None
    with pytest.raises(IndexMismatchError, match="adaptation"):
        load_index(settings.index_dir, expected_manifest(corpus, embedder, None), embedder)


def test_adapted_index_without_its_base_vectors_is_refused(tmp_path: Path, settings: Settings, corpus: Corpus, embedder: Embedder, engine) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "faq"
    shutil.copytree(settings.index_dir, copy)
    (copy / BASE_INDEX_FILE).unlink()
    with pytest.raises(IndexMismatchError, match="damaged.*python -m bot build"):
        load_index(copy, expected_manifest(corpus, embedder, settings.adaptation), embedder)


def _question_vectors(index: faiss.Index, rows: list[Row]) -> np.ndarray:
    """The stored vectors of the entries' own questions, in entry order."""
    return index.reconstruct_n(0, index.ntotal)[[i for i, row in enumerate(rows) if row.kind == "question"]]


def test_an_empty_unanswered_list_is_warned_about(
    tmp_path: Path, settings: Settings, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, folder)
    (folder / "unanswered.yaml").write_text("questions: []\n", encoding="utf-8")
    local = settings.model_copy(update={"corpus_dir": folder, "index_dir": tmp_path / "none"})
    with pytest.raises(IndexMissingError):
        load_engine(local, embedder)
    assert "confidences will run high" in caplog.text
    caplog.clear()
    with pytest.raises(IndexMissingError):
        load_engine(settings.model_copy(update={"index_dir": tmp_path / "none"}), embedder)
    assert "unanswered.yaml" not in caplog.text
