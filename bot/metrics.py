"""Ranking metrics at a cutoff, as BEIR / pytrec_eval define them.

Graded relevance counts in nDCG (linear gain); every other metric treats any grade of
at least 1 as relevant. MAP@k divides by the number of relevant entries (pytrec_eval's
map_cut), Recall@k likewise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]
METRIC_KEYS = ("ndcg@10", "recall@10", "mrr@10", "map@10", "p@5", "hit@1")


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    dcg = sum(grades.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


def average_precision(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    hits, total = 0, 0.0
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant) if relevant else 0.0


def precision(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return len(relevant.intersection(ranked[:k])) / k


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the queries that have at least one relevant entry."""
    totals = dict.fromkeys(METRIC_KEYS, 0.0)
    judged = [q for q in run if any(g > 0 for g in qrels.get(q, {}).values())]
    for q in judged:
        ranked, grades = run[q], qrels[q]
        relevant = {doc for doc, g in grades.items() if g > 0}
        totals["ndcg@10"] += ndcg(ranked, grades, 10)
        totals["recall@10"] += recall(ranked, relevant, 10)
        totals["mrr@10"] += mrr(ranked, relevant, 10)
        totals["map@10"] += average_precision(ranked, relevant, 10)
        totals["p@5"] += precision(ranked, relevant, 5)
        totals["hit@1"] += float(bool(ranked) and ranked[0] in relevant)
    return {key: value / len(judged) if judged else 0.0 for key, value in totals.items()}
