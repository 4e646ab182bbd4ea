"""Choose fusion weights, the confidence calibration and thresholds on the TUNE split.

Reads corpus/eval.yaml, uses only items with `split: tune`, and prints the settings it
chose. Paste them into bot/config.py (the defaults) and report with
`python -m bot eval --split test`, which the choice never saw.

    .venv/bin/python scripts/tune_decision.py
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.answer import Calibration
from bot.config import Settings
from bot.corpus import load_corpus, load_eval_set
from bot.engine import assemble, load_embedder
from bot.index import build_index
from bot.retrieve import FusionWeights
from bot.text import TextProcessor

# A wrong answer costs this many times a missed one (the person is routed to the desk).
WRONG_COST = 5.0


def main() -> None:
    settings = Settings(log_level="WARNING")
    corpus = load_corpus(settings.corpus_dir)
    tune = [q for q in load_eval_set(settings.corpus_dir, corpus) if q.split == "tune"]
    embedder = load_embedder(settings)
    text = TextProcessor(corpus.synonyms)
    retriever = assemble(settings, corpus, embedder, build_index(corpus, embedder, text), text).retriever
    vectors = {q.query: retriever.embed_query(q.query) for q in tune}
    in_domain = [q for q in tune if q.id is not None]

    best: tuple[float, float, FusionWeights] | None = None
    grid = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]
    for wa, wl in itertools.product(grid, grid):
        weights = FusionWeights(1.0, wa, wl)
        retriever._weights = weights
        hits, margins = 0, []
        for q in in_domain:
            ranked = retriever.rank_vector(q.query, vectors[q.query])
            hits += ranked[0].entry.id == q.id
            right = next(c.score for c in ranked if c.entry.id == q.id)
            other = next(c.score for c in ranked if c.entry.id != q.id)
            margins.append(right - other)
        key = (hits / len(in_domain), float(np.mean(margins)), weights)
        print(f"weights q=1 a={wa:.2f} lex={wl:.2f}: top-1 {key[0]:.3f}, mean margin {key[1]:.3f}", file=sys.stderr)
        if best is None or key[:2] > best[:2]:
            best = key
    assert best is not None
    weights = best[2]
    retriever._weights = weights

    features, labels = [], []
    for q in tune:
        ranked = retriever.rank_vector(q.query, vectors[q.query])
        features.append(Calibration.features(ranked[0], ranked[1].score))
        labels.append(int(q.id is not None and ranked[0].entry.id == q.id))
    x, y = np.array(features), np.array(labels)
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x, y)
    calibration = Calibration(weights=tuple(float(w) for w in model.coef_[0]), bias=float(model.intercept_[0]))  # type: ignore[arg-type]
    conf = model.predict_proba(x)[:, 1]

    def cost(threshold: float) -> float:
        answered = conf >= threshold
        return float(np.sum(answered & (y == 0)) * WRONG_COST - np.sum(answered & (y == 1)))

    thresholds = np.round(np.arange(0.3, 0.96, 0.01), 2)
    answer_threshold = float(min(thresholds, key=lambda t: (cost(t), t)))
    suggest_threshold = round(answer_threshold / 3, 2)

    print(f"top-1 on tune in-domain: {best[0]:.3f}")
    print(f"answered on tune: {np.mean(conf >= answer_threshold):.3f}; wrong among answered: "
          f"{np.sum((conf >= answer_threshold) & (y == 0))}")
    print("chosen settings (defaults in bot/config.py):")
    print(f"  weight_question = {weights.question}")
    print(f"  weight_answer = {weights.answer}")
    print(f"  weight_lexical = {weights.lexical}")
    print(f"  calibration_weights = {[round(w, 3) for w in calibration.weights]}")
    print(f"  calibration_bias = {round(calibration.bias, 3)}")
    print(f"  answer_threshold = {answer_threshold}")
    print(f"  suggest_threshold = {suggest_threshold}")


if __name__ == "__main__":
    main()
