from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.config import Settings
from bot.corpus import Corpus, load_corpus
from bot.embed.base import Embedder
from bot.engine import ensure_index, load_engine
from bot.errors import IndexMismatchError, IndexMissingError
from bot.index import CHUNK_CHARS, MANIFEST_FILE, build_index, expected_manifest, load_index, read_manifest, save_index
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
    n_rows = sum(2 + len(e.alternates) for e in engine.corpus.entries) + chunks
    assert chunks > 0, "the two-paragraph answers are also indexed in pieces"
    assert engine.faq_index.index.ntotal == manifest["rows"] == n_rows


def test_missing_index_names_the_build_command(tmp_path: Path, corpus: Corpus, embedder: Embedder) -> None:
    with pytest.raises(IndexMissingError, match="python -m bot build"):
        load_index(tmp_path / "none", expected_manifest(corpus, embedder))


def test_index_of_another_corpus_is_refused(tmp_path: Path, settings: Settings, corpus: Corpus, embedder: Embedder) -> None:
    folder = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, folder)
    text = TextProcessor(corpus.synonyms)
    save_index(build_index(corpus, embedder, text), tmp_path / "faq")
    faq = folder / "faq.yaml"
    faq.write_text(faq.read_text(encoding="utf-8").replace("カスハラって何？", "カスハラって何でしょう？"), encoding="utf-8")
    changed = load_corpus(folder)
    with pytest.raises(IndexMismatchError, match=r"corpus content .*python -m bot build"):
        load_index(tmp_path / "faq", expected_manifest(changed, embedder))
    stale = settings.model_copy(update={"corpus_dir": folder, "index_dir": tmp_path / "faq"})
    with pytest.raises(IndexMismatchError):
        load_engine(stale, embedder)


def test_index_of_another_model_setting_is_refused(tmp_path: Path, corpus: Corpus, embedder: Embedder) -> None:
    save_index(build_index(corpus, embedder, TextProcessor(corpus.synonyms)), tmp_path / "faq")
    expected = expected_manifest(corpus, embedder)
    other = {**expected, "model": {**expected["model"], "query_prefix": "検索: "}}  # type: ignore[dict-item]
    with pytest.raises(IndexMismatchError, match="embedding model"):
        load_index(tmp_path / "faq", other)


def test_build_only_when_stale_and_writes_atomically(tmp_path: Path, settings: Settings, corpus: Corpus, embedder: Embedder) -> None:
    local = settings.model_copy(update={"index_dir": tmp_path / "faq"})
    text = TextProcessor(corpus.synonyms)
    assert ensure_index(local, corpus, embedder, text) is True
    first = read_manifest(local.index_dir)
    assert ensure_index(local, corpus, embedder, text) is False
    assert read_manifest(local.index_dir) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faq"], "no temporary folders left behind"
    assert (local.index_dir / MANIFEST_FILE).is_file()


def test_failed_write_keeps_the_previous_index(tmp_path: Path, corpus: Corpus, embedder: Embedder) -> None:
    text = TextProcessor(corpus.synonyms)
    built = build_index(corpus, embedder, text)
    save_index(built, tmp_path / "faq")
    before = (tmp_path / "faq" / MANIFEST_FILE).read_text()
    built.manifest["unserializable"] = object()  # json.dumps fails mid-write
    with pytest.raises(TypeError):
        save_index(built, tmp_path / "faq")
    assert (tmp_path / "faq" / MANIFEST_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faq"]
