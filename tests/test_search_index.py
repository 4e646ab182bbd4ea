"""The index kind chosen by size: HNSW above FAQBOT_EXACT_SEARCH_MAX_ROWS, recorded in the
manifest, searched as built after loading, and ranked by candidates as the exact index
ranks every entry. The seed corpus plays a large one by lowering the threshold."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from bot.config import Settings
from bot.corpus import Corpus, load_eval_set
from bot.embed.base import Embedder
from bot.engine import Engine, ensure_index, fusion_weights
from bot.errors import IndexMismatchError
from bot.index import INDEX_FILE, MANIFEST_FILE, FaqIndex, build_index, expected_manifest, load_index, save_index
from bot.candidates import CandidateLimits
from bot.retrieve import Retriever
from bot.search_index import HNSW_EF_SEARCH, describe, kind_for, new_index, recorded_kind
from bot.text import TextProcessor
from bot.types import Matrix


def test_the_index_is_exact_up_to_the_threshold() -> None:
    assert kind_for(8_000, 30_000) == "exact"
    assert kind_for(30_000, 30_000) == "exact"
    assert kind_for(30_001, 30_000) == "hnsw"
    assert kind_for(10**9, None) == "exact"


@pytest.fixture(scope="module")
def hnsw(engine: Engine, corpus: Corpus, embedder: Embedder) -> FaqIndex:
    """The real corpus, unadapted, with a threshold below its row count (embedded on ONNX
    Runtime, which the session's engine turned on)."""
    return build_index(corpus, embedder, TextProcessor(corpus.synonyms), exact_max_rows=10)


@pytest.fixture(scope="module")
def exact(hnsw: FaqIndex) -> FaqIndex:
    """The same vectors in an exact index, as a build under the threshold writes them."""
    index = new_index(hnsw.index.reconstruct_n(0, hnsw.index.ntotal), "exact")
    return replace(hnsw, index=index, manifest=hnsw.manifest | {"search": describe("exact")})


def test_above_the_threshold_the_index_is_hnsw_and_the_manifest_says_so(engine: Engine, hnsw: FaqIndex) -> None:
    assert isinstance(hnsw.index, faiss.IndexHNSWFlat)
    assert hnsw.manifest["search"] == {"kind": "hnsw", "m": 32, "ef_construction": 200, "ef_search": HNSW_EF_SEARCH}
    assert isinstance(hnsw.unanswered, faiss.IndexFlatIP), "the known unanswered questions stay exact"
    assert engine.faq_index.manifest["rows"] == hnsw.index.ntotal < engine.settings.exact_search_max_rows
    assert recorded_kind(engine.faq_index.manifest) == "exact" and engine.retriever.exhaustive


def test_a_loaded_hnsw_index_searches_as_the_manifest_says(
    tmp_path: Path, corpus: Corpus, embedder: Embedder, hnsw: FaqIndex
) -> None:
    assert isinstance(hnsw.index, faiss.IndexHNSWFlat)
    hnsw.index.hnsw.efSearch = 16  # what the file will hold; the manifest says otherwise
    try:
        save_index(hnsw, tmp_path / "faq")
    finally:
        hnsw.index.hnsw.efSearch = HNSW_EF_SEARCH
    loaded = load_index(tmp_path / "faq", expected_manifest(corpus, embedder, None), embedder)
    assert isinstance(loaded.index, faiss.IndexHNSWFlat)
    assert loaded.index.hnsw.efSearch == HNSW_EF_SEARCH


def test_an_index_file_of_another_kind_than_its_manifest_is_refused(
    tmp_path: Path, corpus: Corpus, embedder: Embedder, hnsw: FaqIndex, exact: FaqIndex
) -> None:
    save_index(hnsw, tmp_path / "faq")
    faiss.write_index(exact.index, str(tmp_path / "faq" / INDEX_FILE))
    with pytest.raises(IndexMismatchError, match="inconsistent"):
        load_index(tmp_path / "faq", expected_manifest(corpus, embedder, None), embedder)


def test_a_changed_threshold_rebuilds_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, corpus: Corpus, embedder: Embedder,
    exact: FaqIndex, hnsw: FaqIndex,
) -> None:
    save_index(exact, tmp_path / "faq")
    built: list[int | None] = []

    def build(*args: object, exact_max_rows: int | None = None, **kwargs: object) -> FaqIndex:
        built.append(exact_max_rows)
        return hnsw if exact_max_rows is not None and exact_max_rows < hnsw.index.ntotal else exact

    monkeypatch.setattr("bot.engine.build_index", build)
    local = settings.model_copy(update={"index_dir": tmp_path / "faq", "adapt_epochs": 0.0, "runtime": "torch"})
    text = TextProcessor(corpus.synonyms)
    assert not ensure_index(local, corpus, embedder, text) and built == []
    lowered = local.model_copy(update={"exact_search_max_rows": 10})
    assert ensure_index(lowered, corpus, embedder, text) and built == [10]
    assert json.loads((tmp_path / "faq" / MANIFEST_FILE).read_text())["search"]["kind"] == "hnsw"
    assert not ensure_index(lowered, corpus, embedder, text) and built == [10]


class _Remembering:
    """The same embedder, each query text embedded once: two retrievers share the vectors."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._seen: dict[str, np.ndarray] = {}
        self.model_id, self.dim = embedder.model_id, embedder.dim

    def fingerprint(self) -> dict[str, object]:
        return self._embedder.fingerprint()

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        new = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if new:
            self._seen.update(zip(new, self._embedder.embed_queries(new)))
        return np.stack([self._seen[t] for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._embedder.embed_passages(texts)


@pytest.fixture(scope="module")
def remembering(embedder: Embedder) -> _Remembering:
    return _Remembering(embedder)


def _top1_agreement(
    settings: Settings, corpus: Corpus, exact: FaqIndex, hnsw: FaqIndex, limits: CandidateLimits, shared: _Remembering
) -> float:
    text = TextProcessor(corpus.synonyms)
    weights = fusion_weights(settings)
    every = Retriever.for_corpus(corpus, replace(exact, embedder=shared), text, weights)
    some = Retriever.for_corpus(corpus, replace(hnsw, embedder=shared), text, weights, limits=limits)
    assert every.exhaustive and not some.exhaustive
    queries = [q.query for q in load_eval_set(settings.corpus_dir, corpus) if q.split == "test8"]
    assert len(queries) > 100
    same = [every.rank(q)[0].entry.id == some.rank(q)[0].entry.id for q in queries]
    return sum(same) / len(same)


def test_the_hnsw_path_ranks_first_what_the_exact_path_does(
    settings: Settings, corpus: Corpus, exact: FaqIndex, hnsw: FaqIndex, remembering: _Remembering
) -> None:
    # The 20 entries are fewer than the sample, so the z-scores are the exact path's; an
    # entry outside the candidates is one that cannot reach the top ten, as far as HNSW
    # finds the nearest 100 of the 927 rows (at this size, all of them).
    assert _top1_agreement(settings, corpus, exact, hnsw, CandidateLimits(), remembering) == 1.0


def test_with_few_candidates_and_a_small_sample_the_top_1_still_agrees(
    settings: Settings, corpus: Corpus, exact: FaqIndex, hnsw: FaqIndex, remembering: _Remembering
) -> None:
    # Tight limits exercise the candidate path for real on the small corpus: 20 of the
    # 927 rows searched, at most five entries added for their lexical scores, the spread
    # of the dense signals estimated on half the entries. The right entry is near the
    # query in one sense or the other, so it stays a candidate; the estimated z-scores
    # move near ties only. Measured: 120 of the 122 test8 queries keep their top entry
    # (even 5 rows, no lexical additions and a 5-entry sample keep 113); the bound leaves
    # room for a few more near ties where the model's vectors differ by a rounding.
    limits = CandidateLimits(nearest_rows=20, max_lexical=5, sample_entries=10)
    assert _top1_agreement(settings, corpus, exact, hnsw, limits, remembering) >= 0.95
