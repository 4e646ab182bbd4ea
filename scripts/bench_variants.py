"""Compare retrieval variants on a BEIR-like FAQ benchmark (LocalgovFAQ during development).

Embeddings are cached under --cache so that trying a fusion variant takes seconds.
Only the queries selected with --ids are scored: tune on odd ids, report on even ids
once, with `python -m bot eval-retrieval`, which ranks exactly as the service does.

    .venv/bin/python scripts/bench_variants.py --data /path/to/localgov --ids odd [--adapt]

With --adapt the model is first adapted to the benchmark corpus, as `build` does with
the current FAQBOT_ADAPT_* settings (10 to 20 minutes for LocalgovFAQ on two cores).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import bm25s
import numpy as np

from bot.benchmark import load_benchmark, select_ids
from bot.config import Settings
from bot.embed.adapt import adapt, training_pairs
from bot.engine import load_embedder
from bot.index import CHUNK_CHARS
from bot.metrics import evaluate
from bot.text import TextProcessor, split_passage


def cached(cache: Path, name: str, texts: list[str], fn) -> np.ndarray:  # type: ignore[no-untyped-def]
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    path = cache / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = fn(texts)
    np.save(path, vectors)
    return vectors


def bm25_matrix(docs: list[list[str]], queries: list[list[str]], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    model = bm25s.BM25(k1=k1, b=b)
    model.index(docs, show_progress=False)
    vocab = model.vocab_dict
    out = np.zeros((len(queries), len(docs)), dtype=np.float32)
    for i, q in enumerate(queries):
        known = [t for t in q if t in vocab]
        if known:
            out[i] = model.get_scores(known)
    return out


def char_ngrams(text: str, n: int = 2) -> list[str]:
    text = text.replace(" ", "")
    return [text[i : i + n] for i in range(max(1, len(text) - n + 1))]


def zscore(m: np.ndarray) -> np.ndarray:
    return (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-6)


def maxnorm(m: np.ndarray) -> np.ndarray:
    top = m.max(axis=1, keepdims=True)
    return np.where(top > 0, m / np.where(top > 0, top, 1), 0)


def rank_positions(m: np.ndarray) -> np.ndarray:
    """0-based rank of every entry for every query."""
    order = np.argsort(-m, axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(m.shape[1])[None, :].repeat(m.shape[0], axis=0), axis=1)
    return ranks


def rrf(rank_list: list[np.ndarray], k: int = 60) -> np.ndarray:
    return sum(1.0 / (k + 1 + r) for r in rank_list)


def score(sim: np.ndarray, ids: list[str], qids: list[str], qrels) -> dict[str, float]:  # type: ignore[no-untyped-def]
    top = np.argsort(-sim, axis=1)[:, :10]
    run = {q: [ids[j] for j in top[i]] for i, q in enumerate(qids)}
    return evaluate(run, qrels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ids", default="odd")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/faqbot-bench-cache"))
    parser.add_argument("--adapt", action="store_true", help="adapt the model to the corpus first")
    args = parser.parse_args()

    settings = Settings(log_level="WARNING")
    corpus, queries, qrels = load_benchmark(args.data / "corpus.json", args.data / "queries.json", args.data / "qrels.json")
    queries = select_ids(queries, args.ids)
    qids = list(queries)
    ids = [e.id for e in corpus.entries]
    text = TextProcessor()
    emb = load_embedder(settings)
    if args.adapt and settings.adaptation is not None:
        options = settings.adaptation
        args.cache = args.cache / ("adapted-" + hashlib.sha256(repr(options).encode()).hexdigest()[:8])
        emb = adapt(emb, training_pairs(corpus, text), options)  # type: ignore[arg-type]
    args.cache.mkdir(parents=True, exist_ok=True)
    questions = [text.fold(e.question) for e in corpus.entries]
    answers = [text.fold(e.answer) for e in corpus.entries]
    qtexts = [text.fold(queries[q]) for q in qids]

    qq = cached(args.cache, "q-query", questions, emb.embed_queries)
    ap = cached(args.cache, "a-passage", answers, emb.embed_passages)
    uq = cached(args.cache, "queries", qtexts, emb.embed_queries)
    chunks, owner = [], []
    for j, answer in enumerate(answers):
        pieces = split_passage(answer, CHUNK_CHARS)
        chunks += pieces
        owner += [j] * len(pieces)
    cp = cached(args.cache, "chunks", chunks, emb.embed_passages)
    chunk_sim = np.full((len(qids), len(answers)), -1.0, dtype=np.float32)
    owner_arr = np.array(owner)
    sims = uq @ cp.T
    for j in range(len(answers)):
        chunk_sim[:, j] = sims[:, owner_arr == j].max(axis=1)

    tq = [text.tokens(q) for q in qtexts]
    signals = {
        "question": uq @ qq.T,
        "answer": uq @ ap.T,
        "chunk": np.maximum(chunk_sim, uq @ ap.T),
        "lexical": bm25_matrix([text.tokens(f"{q} {a}") for q, a in zip(questions, answers)], tq),
        "reading": bm25_matrix(
            [text.reading_grams(q) + text.reading_grams(a) for q, a in zip(questions, answers)],
            [text.reading_grams(q) for q in qtexts],
        ),
        "char 2-gram": bm25_matrix(
            [char_ngrams(f"{q} {a}") for q, a in zip(questions, answers)], [char_ngrams(q) for q in qtexts]
        ),
    }
    z = {k: zscore(v) for k, v in signals.items()}
    variants: dict[str, np.ndarray] = {f"{k} alone": v for k, v in signals.items()}
    variants["raw sum: question + 0.3 answer + 0.1 lexical/max"] = (
        signals["question"] + 0.3 * signals["answer"] + 0.1 * maxnorm(signals["lexical"])
    )
    recipes = {
        "z: question + 0.5 lexical": {"question": 1, "lexical": 0.5},
        "z: question + 0.3 answer + 0.5 lexical": {"question": 1, "answer": 0.3, "lexical": 0.5},
        "z: + 0.3 char 2-gram": {"question": 1, "answer": 0.3, "lexical": 0.5, "char 2-gram": 0.3},
        "z: question + 0.6 chunk + 0.3 answer + 0.5 lexical": {"question": 1, "chunk": 0.6, "answer": 0.3, "lexical": 0.5},
        "z: question + 0.3 chunk + 0.5 lexical": {"question": 1, "chunk": 0.3, "lexical": 0.5},
        "z: question + 0.3 chunk + 0.5 lexical + 0.2 reading (previous default)": {
            "question": 1, "chunk": 0.3, "lexical": 0.5, "reading": 0.2},
        "z: question + 0.3 answer + 0.3 chunk + 0.7 lexical + 0.2 reading (default)": {
            "question": 1, "answer": 0.3, "chunk": 0.3, "lexical": 0.7, "reading": 0.2},
    }
    for name, weights in recipes.items():
        variants[name] = sum(w * z[k] for k, w in weights.items())
    ranks = {k: rank_positions(v) for k, v in signals.items()}
    variants["RRF (k=60): question + lexical"] = rrf([ranks["question"], ranks["lexical"]])
    variants["RRF (k=60): question + chunk + lexical + reading"] = rrf(
        [ranks["question"], ranks["chunk"], ranks["lexical"], ranks["reading"]]
    )
    for name, sim in variants.items():
        m = score(sim, ids, qids, qrels)
        print(f"{name:75s} ndcg@10 {m['ndcg@10']:.4f}  hit@1 {m['hit@1']:.4f}  recall@10 {m['recall@10']:.4f}")


if __name__ == "__main__":
    main()
