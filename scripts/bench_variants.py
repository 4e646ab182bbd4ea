"""Compare retrieval variants on a BEIR-like FAQ benchmark (LocalgovFAQ during development).

Embeddings are cached under --cache so that trying a fusion variant takes seconds.
Only the queries selected with --ids are scored: tune on odd ids, report on even ids
once, with `python -m bot eval-retrieval`, which ranks exactly as the service does.

    .venv/bin/python scripts/bench_variants.py --data /path/to/localgov --ids odd
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from pathlib import Path

import bm25s
import numpy as np

from bot.benchmark import load_benchmark, select_ids
from bot.config import Settings
from bot.engine import load_embedder
from bot.metrics import evaluate
from bot.text import TextProcessor


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


def score(sim: np.ndarray, ids: list[str], qids: list[str], qrels) -> dict[str, float]:  # type: ignore[no-untyped-def]
    top = np.argsort(-sim, axis=1)[:, :10]
    run = {q: [ids[j] for j in top[i]] for i, q in enumerate(qids)}
    return evaluate(run, qrels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ids", default="odd")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/faqbot-bench-cache"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    settings = Settings(log_level="WARNING")
    corpus, queries, qrels = load_benchmark(args.data / "corpus.json", args.data / "queries.json", args.data / "qrels.json")
    queries = select_ids(queries, args.ids)
    qids = list(queries)
    ids = [e.id for e in corpus.entries]
    text = TextProcessor()
    emb = load_embedder(settings)
    questions = [text.fold(e.question) for e in corpus.entries]
    answers = [text.fold(e.answer) for e in corpus.entries]
    qtexts = [text.fold(queries[q]) for q in qids]

    qq = cached(args.cache, "q-query", questions, emb.embed_queries)
    qp = cached(args.cache, "q-passage", questions, emb.embed_passages)
    ap = cached(args.cache, "a-passage", answers, emb.embed_passages)
    qap = cached(args.cache, "qa-passage", [f"{q} {a}" for q, a in zip(questions, answers)], emb.embed_passages)
    uq = cached(args.cache, "queries", qtexts, emb.embed_queries)

    dense = {"q(query)": uq @ qq.T, "q(passage)": uq @ qp.T, "a": uq @ ap.T, "qa": uq @ qap.T}
    tq = [text.tokens(q) for q in qtexts]
    lex = {
        "bm25 q": bm25_matrix([text.tokens(q) for q in questions], tq),
        "bm25 a": bm25_matrix([text.tokens(a) for a in answers], tq),
        "bm25 qa": bm25_matrix([text.tokens(f"{q} {a}") for q, a in zip(questions, answers)], tq),
        "bm25 2gram qa": bm25_matrix(
            [char_ngrams(f"{q} {a}") for q, a in zip(questions, answers)], [char_ngrams(q) for q in qtexts]
        ),
    }
    rows = []
    for name, m in {**dense, **lex}.items():
        rows.append((name, score(m, ids, qids, qrels)))

    z = {k: zscore(v) for k, v in {**dense, **lex}.items()}
    for wq, wa, wl, w2 in itertools.product([1.0], [0.0, 0.3, 0.5], [0.0, 0.3, 0.5], [0.0, 0.3]):
        fused = wq * z["q(query)"] + wa * z["a"] + wl * z["bm25 qa"] + w2 * z["bm25 2gram qa"]
        rows.append((f"z: q={wq} a={wa} bm25={wl} 2gram={w2}", score(fused, ids, qids, qrels)))
    for name, metrics in rows:
        print(f"{name:45s} ndcg@10 {metrics['ndcg@10']:.4f}  hit@1 {metrics['hit@1']:.4f}  recall@10 {metrics['recall@10']:.4f}")


if __name__ == "__main__":
    main()
