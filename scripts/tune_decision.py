"""Fit the confidence calibration and choose the thresholds on the TUNE split.

Uses only the items of corpus/eval.yaml with `split: tune`, ranks them with the
retrieval settings in force (fusion weights are chosen with scripts/bench_variants.py),
fits a logistic model of "the top entry is the right one" on the decision features,
and picks the answer threshold that minimizes a cost in which a wrong answer costs
--wrong-cost missed ones. Paste the printed values into bot/config.py, then report with
`python -m bot eval`, which reads the held-out splits this script never reads.

Questions about other subjects, written by other people, can be added as further
out-of-scope examples with --oos-queries (the defaults were fitted with LocalgovFAQ's
odd-id queries; its even ones stay held out for `python -m bot eval --oos-queries`):

    .venv/bin/python scripts/tune_decision.py --oos-queries queries.json --ids odd
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bot.answer import Calibration
from bot.benchmark import load_queries, select_ids
from bot.config import Settings
from bot.corpus import load_corpus, load_eval_set
from bot.engine import ensure_index, load_embedder, load_engine
from bot.text import TextProcessor

# A wrong answer costs this many times a missed one: a missed one still gets the closest
# entries as suggestions and the route to the desk. 2 was chosen by cross-validation on
# the tuning data against the targets of 95% answered right and 95% out-of-scope routed
# (README, "Retrieval quality"); at 5, about 91% are answered right.
WRONG_COST = 2.0


def main(
    oos_queries: Annotated[Path | None, typer.Option(help="queries.json of another subject: more out-of-scope examples")] = None,
    ids: Annotated[str, typer.Option(help="which --oos-queries by numeric id: all, odd or even")] = "odd",
    oos_weight: Annotated[
        float, typer.Option(help="weight of each --oos-queries example against one tune query")
    ] = 0.3,
    wrong_cost: Annotated[float, typer.Option(min=1.0, help="a wrong answer costs this many missed ones")] = WRONG_COST,
) -> None:
    settings = Settings(log_level="WARNING")
    corpus = load_corpus(settings.corpus_dir)
    tune = [(q.query, q.id) for q in load_eval_set(settings.corpus_dir, corpus) if q.split == "tune"]
    external = list(select_ids(load_queries(oos_queries), ids).values()) if oos_queries else []
    embedder = load_embedder(settings)
    ensure_index(settings, corpus, embedder, TextProcessor(corpus.synonyms))
    retriever = load_engine(settings, embedder).retriever

    features, labels = [], []
    for query, entry_id in [*tune, *((q, None) for q in external)]:
        ranked = retriever.rank(query)
        features.append(Calibration.features(ranked[0], ranked[1].score))
        labels.append(int(entry_id is not None and ranked[0].entry.id == entry_id))
    x, y = np.array(features), np.array(labels)
    in_domain = np.array([entry_id is not None for _, entry_id in tune] + [False] * len(external))
    weight = np.array([1.0] * len(tune) + [oos_weight] * len(external))
    print(f"tune: {in_domain.sum()} in-domain, top-1 {y[in_domain].mean():.3f}; {len(tune) - in_domain.sum()} out-of-scope"
          f"; {len(external)} from {oos_queries} ({ids} ids), weight {oos_weight}")

    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), y, sample_weight=weight)
    # Fold the scaling into the weights so the service needs no scaler.
    weights = model.coef_[0] / scaler.scale_
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * scaler.mean_ / scaler.scale_))
    conf = model.predict_proba(scaler.transform(x))[:, 1]

    def cost(threshold: float) -> float:
        answered = conf >= threshold
        return float(np.sum(weight * (answered & (y == 0))) * wrong_cost - np.sum(weight * (answered & (y == 1))))

    thresholds = np.round(np.arange(0.3, 0.96, 0.01), 2)
    answer_threshold = float(min(thresholds, key=lambda t: (cost(t), t)))
    suggest_threshold = round(answer_threshold / 3, 2)
    answered = conf >= answer_threshold
    print(f"at threshold {answer_threshold}: in-domain answered right {np.mean(answered[in_domain] & (y[in_domain] == 1)):.3f}, "
          f"wrong {np.mean(answered[in_domain] & (y[in_domain] == 0)):.3f}; out-of-scope answered "
          f"{answered[: len(tune)][~in_domain[: len(tune)]].sum()} of tune's, {answered[len(tune):].sum()} of {len(external)} others")
    print("chosen settings (defaults in bot/config.py):")
    print(f"  calibration_weights = {[round(float(w), 3) for w in weights]}")
    print(f"  calibration_bias = {round(bias, 3)}")
    print(f"  answer_threshold = {answer_threshold}")
    print(f"  suggest_threshold = {suggest_threshold}")


if __name__ == "__main__":
    typer.run(main)
