"""Ranking at scale, for `python -m bot bench`: the whole `Retriever.ranking` (dense
search, BM25, fusion) after embedding, over a synthetic FAQ of many entries, with FAISS
alone beside it.

Nothing runs the model, so 100,000 entries take seconds to set up. Each entry joins two
questions and two answer sentences of the seed FAQ and a number of its own (as
bot.bench.synthetic_corpus composes them), and its lemmas and reading bigrams are those of
its parts, each part analyzed once. Its rows (question, kana spelling, answer) have
synthetic vectors shaped like sentence embeddings: they vary along a few dozen
directions, and each entry's rows and the queries about it lie near one point. Queries
are the evaluation set's texts, analyzed for real, each given a vector near a random
entry; the base model's rows share the index's vectors, its queries their own noise.

The HNSW graph of 100,000 entries takes minutes to build on two cores, so it is kept in
`index/bench/` and reused while its vectors and parameters are the same.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from bot.atomic import replace_folder
from bot.config import Settings
from bot.corpus import Contacts, Corpus, Entry, load_corpus
from bot.engine import fusion_weights
from bot.index import FaqIndex, FieldKind, ModelVectors, Row
from bot.lexical import Lexicon
from bot.retrieve import Retriever
from bot.search_index import SearchKind, describe, new_index, prepare_loaded
from bot.text import KanaRespeller, TextProcessor
from bot.types import Matrix

ROW_KINDS: tuple[FieldKind, ...] = ("question", "kana", "answer")
BENCH_FOLDER = "bench"

log = logging.getLogger(__name__)


class ShapedVectors:
    """Normalized synthetic vectors that vary along `latent` directions of `dim`: each
    entry has a point, and its rows and its queries lie near it. Queries draw their noise
    from a stream of their own, so the same seed gives the same rows whatever queries
    were drawn before."""

    def __init__(self, entries: int, dim: int = 384, latent: int = 48, seed: int = 0) -> None:
        self._row_rng = np.random.default_rng(seed)
        self._basis = self._row_rng.standard_normal((latent, dim)).astype(np.float32)
        self.centers = self._row_rng.standard_normal((entries, latent), dtype=np.float32)
        self._query_rng = np.random.default_rng(seed + 1)
        self.dim = dim

    def rows(self, per_entry: int) -> Matrix:
        points = np.repeat(self.centers, per_entry, axis=0)
        points += 0.3 * self._row_rng.standard_normal(points.shape, dtype=np.float32)
        return self._embed(points, self._row_rng)

    def queries(self, entries: np.ndarray) -> Matrix:
        points = self.centers[entries]
        return self._embed(points + 0.4 * self._query_rng.standard_normal(points.shape, dtype=np.float32), self._query_rng)

    def _embed(self, points: np.ndarray, rng: np.random.Generator, chunk: int = 50_000) -> Matrix:
        out = np.empty((len(points), self.dim), dtype=np.float32)
        for start in range(0, len(points), chunk):
            part = points[start : start + chunk] @ self._basis
            part += 0.3 * rng.standard_normal(part.shape, dtype=np.float32)
            part /= np.linalg.norm(part, axis=1, keepdims=True)
            out[start : start + chunk] = part
        return out


class PresetEmbedder:
    """Answers each query text with a vector chosen beforehand: the ranking is timed
    after embedding."""

    def __init__(self, dim: int) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        self._dim = dim

    @property
    def model_id(self) -> str:
        return "preset"

    @property
    def dim(self) -> int:
        return self._dim

    def fingerprint(self) -> dict[str, object]:
        return {"model": "preset", "dim": self._dim}

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return np.stack([self.vectors[t] for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        raise NotImplementedError("a preset embedder embeds no passages")


@dataclass
class Scaled:
    """A synthetic FAQ, indexed, with what a retriever over it needs."""

    corpus: Corpus
    faq_index: FaqIndex
    text: TextProcessor
    lexicon: Lexicon
    respeller: KanaRespeller
    vectors: ShapedVectors
    build_s: float
    """How long the index of the rows took to build (when it was built, if it was kept)."""

    def retriever(self, settings: Settings, exhaustive: bool | None = None) -> Retriever:
        """The ranking as served (candidates, for HNSW), or with every entry scored."""
        weights = fusion_weights(settings)
        return Retriever(self.corpus, self.faq_index, self.text, weights, self.lexicon, self.respeller, exhaustive=exhaustive)

    def preset_queries(self, spellings: Sequence[list[str]], seed: int = 1) -> None:
        """Give each query, in all its spellings, a vector near a random entry (and the
        base model its own noise around the same point)."""
        targets = np.random.default_rng(seed).integers(0, len(self.corpus.entries), len(spellings))
        for embedder in (self.faq_index.embedder, self.faq_index.base_embedder):
            assert isinstance(embedder, PresetEmbedder)
            for query_spellings, vector in zip(spellings, self.vectors.queries(targets)):
                embedder.vectors.update(dict.fromkeys(query_spellings, vector))


def scaled_faq(settings: Settings, entries: int, kind: SearchKind) -> Scaled:
    """The seed corpus grown to `entries` entries with their lexical index and an index
    of `kind` over synthetic row vectors (shared by the index's model and the base one)."""
    seed = load_corpus(settings.corpus_dir)
    text = TextProcessor(seed.synonyms)
    questions = [q for e in seed.entries for q in (e.question, *e.alternates)]
    sentences = [s for e in seed.entries for s in e.answer.split("。") if s.strip()]
    analyzed_q = [text.analyze(q) for q in questions]
    analyzed_s = [text.analyze(s) for s in sentences]
    rng = random.Random(entries)
    out: list[Entry] = []
    lemmas: list[list[str]] = []
    grams: list[list[str]] = []
    for n in range(entries):
        a, b = rng.randrange(len(questions)), rng.randrange(len(questions))
        i, j = rng.sample(range(len(sentences)), 2)
        out.append(
            Entry.model_construct(
                id=f"synthetic-{n}",
                category=seed.entries[0].category,
                question=f"{questions[a]}（{n}）{questions[b]}",
                answer=f"{sentences[i]}。{sentences[j]}。番号{n}。",
                alternates=(),
            )
        )
        lemmas.append([*analyzed_q[a][0], *analyzed_q[b][0], *analyzed_s[i][0], *analyzed_s[j][0], str(n)])
        grams.append([*analyzed_q[a][1], *analyzed_q[b][1], *analyzed_s[i][1], *analyzed_s[j][1]])
    corpus = Corpus(
        entries=tuple(out),
        categories=seed.categories,
        synonyms=seed.synonyms,
        contacts=Contacts(),
        content_hash=f"synthetic:{entries}",
        unanswered=seed.unanswered,
    )
    vectors = ShapedVectors(entries)
    rows = vectors.rows(len(ROW_KINDS))
    if kind == "hnsw":
        index, build_s = kept_hnsw(rows, Path(settings.index_dir).parent / BENCH_FOLDER)
    else:
        started = time.monotonic()
        index = new_index(rows, kind)
        build_s = time.monotonic() - started
    del rows
    faq_index = FaqIndex(
        index=index,
        rows=[Row(e.id, field) for e in out for field in ROW_KINDS],
        manifest={"search": describe(kind)},
        embedder=PresetEmbedder(vectors.dim),
        unanswered=new_index(vectors.queries(np.arange(len(seed.unanswered)) % entries), "exact"),
        base=ModelVectors(index, PresetEmbedder(vectors.dim)),
    )
    respeller = KanaRespeller(text.spellings([*questions, *sentences]) if settings.respell_kana else {})
    return Scaled(corpus, faq_index, text, Lexicon(lemmas, grams), respeller, vectors, build_s)


def kept_hnsw(rows: Matrix, folder: Path) -> tuple[faiss.Index, float]:
    """The HNSW index of `rows` as the build makes it, and how long it took to build: read
    from `folder` when kept there with the same rows and parameters, else built and kept."""
    params = describe("hnsw")
    place = folder / f"hnsw-{len(rows)}-m{params['m']}-efc{params['ef_construction']}"
    info = place / "build.json"
    if info.is_file():
        try:
            index = faiss.read_index(str(place / "index.faiss"))
            # Equal up to rounding: BLAS sums the synthetic vectors in an order that depends on its threads.
            if isinstance(index, faiss.IndexHNSW) and np.allclose(index.reconstruct_n(0, index.ntotal), rows, atol=1e-5):
                prepare_loaded(index, {"search": params})
                return index, float(json.loads(info.read_text())["build_s"])
            log.warning("%s holds other vectors than the benchmark's: building it again", place)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            log.warning("cannot read %s (%s): building it again", place, exc)
    log.info("building the HNSW graph of %d rows (minutes on two cores; kept in %s)", len(rows), place)
    started = time.monotonic()
    index = new_index(rows, "hnsw")
    build_s = time.monotonic() - started

    def fill(tmp: Path) -> None:
        faiss.write_index(index, str(tmp / "index.faiss"))
        (tmp / "build.json").write_text(json.dumps({"build_s": round(build_s, 1)}) + "\n")

    replace_folder(place, fill)
    return index, build_s


def _p(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ranking_at_scale(
    settings: Settings, entries: int, texts: Sequence[str], kind: SearchKind = "hnsw", rounds: int = 3
) -> dict[str, dict[str, float]]:
    """Over a synthetic FAQ of `entries` entries and an index of `kind`: the ranking's
    p50/p95 over `texts` (each timed `rounds` times) and how many candidates it scores.
    For HNSW also how often its top 1 and top 10 agree with scoring every entry, and
    FAISS alone, top-10 of exact and HNSW search, with HNSW's recall@10."""
    scaled = scaled_faq(settings, entries, kind)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # as `bot serve` searches: one FAISS thread per request
    try:
        return _timed(settings, scaled, texts, kind, rounds)
    finally:
        faiss.omp_set_num_threads(threads)


def _timed(settings: Settings, scaled: Scaled, texts: Sequence[str], kind: SearchKind, rounds: int) -> dict[str, dict[str, float]]:
    retriever = scaled.retriever(settings)
    scaled.preset_queries([retriever.spellings(t) for t in texts])
    for text in texts[:5]:
        retriever.ranking(text)
    times, sizes = [], []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            ranked = retriever.ranking(text)
            times.append((time.perf_counter() - started) * 1000)
            sizes.append(len(ranked.candidates))
    ranking = {
        "entries": float(len(scaled.corpus.entries)),
        "rows": float(scaled.faq_index.index.ntotal),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_p(times, 0.95), 2),
        "candidates_median": float(statistics.median(sizes)),
    }
    if kind == "exact":
        return {"ranking": ranking}
    every = scaled.retriever(settings, exhaustive=True)
    top1, top10 = [], []
    for text in texts:
        fast = [c.entry.id for c in retriever.ranking(text).candidates[:10]]
        full = [c.entry.id for c in every.ranking(text).candidates[:10]]
        top1.append(fast[0] == full[0])
        top10.append(len(set(fast) & set(full)) / len(full))
    ranking |= {"top1_agreement": round(float(np.mean(top1)), 4), "top10_agreement": round(float(np.mean(top10)), 4)}
    return {"ranking": ranking, "dense_search": dense_search(scaled)}


def dense_search(scaled: Scaled, queries: int = 200) -> dict[str, float]:
    """Top-10 inner-product search alone over the scaled FAQ's rows: exact (the same
    vectors, read in place) and HNSW as the build makes it, with HNSW's recall@10."""
    hnsw = scaled.faq_index.index
    assert isinstance(hnsw, faiss.IndexHNSW)
    exact = faiss.downcast_index(hnsw.storage)
    asked = scaled.vectors.queries(np.random.default_rng(2).integers(0, len(scaled.corpus.entries), queries))
    figures: dict[str, float] = {"rows": float(hnsw.ntotal), "hnsw_build_s": round(scaled.build_s, 1)}
    found = {}
    for name, index in (("exact", exact), ("hnsw", hnsw)):
        times, ids = [], []
        for q in asked:
            started = time.perf_counter()
            _, top = index.search(q.reshape(1, -1), 10)
            times.append((time.perf_counter() - started) * 1000)
            ids.append(top[0])
        figures[f"{name}_p50_ms"] = round(statistics.median(times), 3)
        found[name] = ids
    recall = [len(set(a) & set(b)) / 10 for a, b in zip(found["hnsw"], found["exact"], strict=True)]
    figures["hnsw_recall_at_10"] = round(float(np.mean(recall)), 4)
    return figures
