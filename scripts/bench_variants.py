"""Compare retrieval variants on a BEIR-like FAQ benchmark (LocalgovFAQ during development).

Every signal the service can fuse is computed once for all selected queries, from the
vectors of an index that `eval-retrieval --index-dir` keeps (built here the same way
when the folder holds none), so that trying a fusion variant takes seconds. Only the
queries selected with --ids are scored: tune on odd ids, report on even ids once, with
`python -m bot eval-retrieval`, which ranks exactly as the service does.

    .venv/bin/python scripts/bench_variants.py --data /path/to/localgov --ids odd --index-dir /tmp/localgov-index

Building that index adapts the model to the benchmark corpus with the current
FAQBOT_ADAPT_* settings: 30 to 40 minutes for LocalgovFAQ on two cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bm25s
import faiss
import numpy as np

from bot.benchmark import benchmark_index, load_benchmark, select_ids
from bot.config import Settings
from bot.embed.base import Embedder
from bot.engine import load_embedder
from bot.index import ASKED_KINDS
from bot.metrics import evaluate
from bot.text import KanaRespeller, TextProcessor


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


def dense_signals(index: faiss.Index, embedder: Embedder, queries: list[str], owner: np.ndarray, kinds: np.ndarray,
                  n: int) -> dict[str, np.ndarray]:
    """Per query and entry: best cosine over question rows (with and without their kana
    spellings), to the answer, and best over the answer's pieces, as bot.retrieve does."""
    rows = index.reconstruct_n(0, index.ntotal)
    sims = embedder.embed_queries(queries) @ rows.T

    def best(mask: np.ndarray) -> np.ndarray:
        out = np.full((len(queries), n), -1.0, dtype=np.float32)
        for j in np.flatnonzero(mask):
            np.maximum(out[:, owner[j]], sims[:, j], out=out[:, owner[j]])
        return out

    answer = best(kinds == "answer")
    return {
        "question": best(np.isin(kinds, list(ASKED_KINDS))),
        "question without kana": best(np.isin(kinds, ["question", "alternate"])),
        "answer": answer,
        "chunk": np.maximum(best(kinds == "chunk"), answer),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ids", default="odd")
    parser.add_argument("--index-dir", type=Path, required=True, help="the benchmark index (kept by eval-retrieval)")
    args = parser.parse_args()

    settings = Settings(log_level="WARNING")
    corpus, queries, qrels = load_benchmark(args.data / "corpus.json", args.data / "queries.json", args.data / "qrels.json")
    queries = select_ids(queries, args.ids)
    qids = list(queries)
    ids = [e.id for e in corpus.entries]
    text = TextProcessor()
    faq_index = benchmark_index(settings, load_embedder(settings), corpus, text, args.index_dir)
    position = {e: i for i, e in enumerate(ids)}
    owner = np.array([position[r.entry_id] for r in faq_index.rows])
    kinds = np.array([r.kind for r in faq_index.rows])

    questions = [text.fold(e.question) for e in corpus.entries]
    answers = [text.fold(e.answer) for e in corpus.entries]
    lexical_docs = [text.tokens(f"{q} {a}") for q, a in zip(questions, answers)]
    reading_docs = [text.reading_grams(q) + text.reading_grams(a) for q, a in zip(questions, answers)]
    char_docs = [char_ngrams(f"{q} {a}") for q, a in zip(questions, answers)]

    def query_signals(qtexts: list[str]) -> dict[str, np.ndarray]:
        signals = dense_signals(faq_index.index, faq_index.embedder, qtexts, owner, kinds, len(ids))
        if faq_index.base is not None:
            base = dense_signals(faq_index.base.index, faq_index.base.embedder, qtexts, owner, kinds, len(ids))
            signals |= {f"base {k}": v for k, v in base.items()}
        return signals | {
            "lexical": bm25_matrix(lexical_docs, [text.tokens(q) for q in qtexts]),
            "reading": bm25_matrix(reading_docs, [text.reading_grams(q) for q in qtexts]),
            "char 2-gram": bm25_matrix(char_docs, [char_ngrams(q) for q in qtexts]),
        }

    typed = [text.fold(queries[q]) for q in qids]
    signals = query_signals(typed)
    if settings.respell_kana:
        # As the service does: each entry keeps its best score over the typed and respelled query.
        respeller = KanaRespeller(text.spellings(questions + answers))
        respelled = query_signals([respeller.respell(q) for q in typed])
        signals = {k: np.maximum(v, respelled[k]) for k, v in signals.items()}
    z = {k: zscore(v) for k, v in signals.items()}
    variants: dict[str, np.ndarray] = {f"{k} alone": v for k, v in signals.items()}
    variants["raw sum: question + 0.3 answer + 0.1 lexical/max"] = (
        signals["question"] + 0.3 * signals["answer"] + 0.1 * maxnorm(signals["lexical"])
    )
    recipes = {
        "z: question + 0.5 lexical": {"question": 1, "lexical": 0.5},
        "z: question + 0.3 answer + 0.5 lexical": {"question": 1, "answer": 0.3, "lexical": 0.5},
        "z: + 0.3 char 2-gram": {"question": 1, "answer": 0.3, "lexical": 0.5, "char 2-gram": 0.3},
        "z: question + 0.3 chunk + 0.5 lexical + 0.2 reading (session 5 default)": {
            "question": 1, "chunk": 0.3, "lexical": 0.5, "reading": 0.2},
        "z: question w/o kana + 0.3 answer + 0.3 chunk + 0.7 lexical + 0.2 reading (session 6 default)": {
            "question without kana": 1, "answer": 0.3, "chunk": 0.3, "lexical": 0.7, "reading": 0.2},
        "z: question + 0.3 answer + 0.3 chunk + 0.7 lexical + 0.2 reading": {
            "question": 1, "answer": 0.3, "chunk": 0.3, "lexical": 0.7, "reading": 0.2},
        "z: question + 0.3 answer + 0.3 chunk + 0.5 lexical + 0.2 reading": {
            "question": 1, "answer": 0.3, "chunk": 0.3, "lexical": 0.5, "reading": 0.2},
    }
    if faq_index.base is not None:
        recipes["z: ... + 0.3 base question + 0.3 base chunk (default)"] = {
            "question": 1, "answer": 0.3, "chunk": 0.3, "lexical": 0.5, "reading": 0.2,
            "base question": 0.3, "base chunk": 0.3}
        recipes["z: default with base question and chunk at 1.0 / 0.3"] = {
            "question": 1, "answer": 0.3, "chunk": 0.3, "lexical": 0.5, "reading": 0.2,
            "base question": 1.0, "base chunk": 0.3}
    for name, weights in recipes.items():
        variants[name] = sum(w * z[k] for k, w in weights.items())
    ranks = {k: rank_positions(v) for k, v in signals.items()}
    variants["RRF (k=60): question + lexical"] = rrf([ranks["question"], ranks["lexical"]])
    variants["RRF (k=60): question + chunk + lexical + reading"] = rrf(
        [ranks["question"], ranks["chunk"], ranks["lexical"], ranks["reading"]]
    )
    for name, sim in variants.items():
        m = score(sim, ids, qids, qrels)
        print(f"{name:90s} ndcg@10 {m['ndcg@10']:.4f}  hit@1 {m['hit@1']:.4f}  recall@10 {m['recall@10']:.4f}")


if __name__ == "__main__":
    main()
