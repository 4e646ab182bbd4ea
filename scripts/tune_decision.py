"""Fit the confidence calibration and choose the thresholds on the tuning data.

Uses only the in-domain items of corpus/eval.yaml in the tuning splits (`TUNING_SPLITS`)
and the questions of corpus/unanswered.yaml as out-of-scope ones, ranks them with the
retrieval settings in force (fusion weights are chosen with
scripts/bench_variants.py), fits a logistic model of "the top entry is the right one"
on the decision features, and picks the answer threshold that minimizes a cost in which
a wrong answer costs --wrong-cost missed ones. Paste the printed values into
bot/config.py, then report with `python -m bot eval`, which reads the held-out split
this script never reads.

Questions about other subjects, written by other people, can be added as further
out-of-scope examples with --oos-queries (the defaults were fitted with LocalgovFAQ's
odd-id queries; its even ones stay held out for `python -m bot eval --oos-queries`):

    .venv/bin/python scripts/tune_decision.py --oos-queries queries.json --ids odd

--cv estimates how a fit generalizes to a new author before anything is reported: each
tuning split (each has its own author or sitting) is held out in turn, from the fit and
from the unanswered list, the model and threshold are fitted on the others, and the
held-out split is scored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bot.answer import Calibration
from bot.benchmark import load_queries, select_ids
from bot.config import Settings
from bot.corpus import TUNING_SPLITS, Corpus, load_corpus, load_eval_set
from bot.engine import ensure_index, load_embedder, load_engine
from bot.retrieve import Retriever
from bot.text import TextProcessor

# A wrong answer costs this many times a missed one: a missed one still gets the closest
# entries as suggestions and the route to the desk. 2 was chosen by cross-validation on
# the tuning data against the targets of 95% answered right and 95% out-of-scope routed
# (README, "Retrieval quality"; `--cv` prints the figures behind it).
WRONG_COST = 2.0
EXTERNAL = "external"


@dataclass(frozen=True)
class Examples:
    """Labelled queries: their decision features, and whether the top entry is right.

    The last feature, the best cosine to a known unanswered question, is computed per
    fit (`features`), leaving out the questions of the query's own source: the service
    never finds a new query in its own list, and a fit that did would trust the feature
    far too much."""

    ranked: np.ndarray
    cosines: np.ndarray
    sources: np.ndarray
    right: np.ndarray
    in_domain: np.ndarray
    weight: np.ndarray
    group: np.ndarray

    def features(self, held: str | None = None) -> np.ndarray:
        keep = self.sources[None, :] != self.group[:, None]
        if held is not None:
            keep &= self.sources[None, :] != held
        best = np.where(keep, self.cosines, -1.0).max(axis=1, initial=0.0)
        return np.column_stack([self.ranked, best])

    def subset(self, mask: np.ndarray) -> Examples:
        return replace(
            self, ranked=self.ranked[mask], cosines=self.cosines[mask], right=self.right[mask],
            in_domain=self.in_domain[mask], weight=self.weight[mask], group=self.group[mask],
        )


@dataclass(frozen=True)
class Fit:
    weights: np.ndarray
    bias: float
    answer_threshold: float

    def answered(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias))) >= self.answer_threshold


def collect(retriever: Retriever, corpus: Corpus, labelled: list[tuple[str, str | None, str]], oos_weight: float) -> Examples:
    """Rank every (query, entry id or None, group) exactly as the service does."""
    ranked, cosines, right = [], [], []
    for query, entry_id, _ in labelled:
        candidates, unanswered = retriever.rank_with_unanswered(query)
        ranked.append(Calibration.features(candidates[0], candidates[1].score)[:-1])
        cosines.append(unanswered)
        right.append(entry_id is not None and candidates[0].entry.id == entry_id)
    group = np.array([g for _, _, g in labelled])
    return Examples(
        ranked=np.array(ranked),
        cosines=np.array(cosines).reshape(len(labelled), len(corpus.unanswered)),
        sources=np.array([u.source for u in corpus.unanswered]),
        right=np.array(right),
        in_domain=np.array([entry_id is not None for _, entry_id, _ in labelled]),
        weight=np.where(group == EXTERNAL, oos_weight, 1.0),
        group=group,
    )


def fit(x: np.ndarray, ex: Examples, wrong_cost: float) -> Fit:
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), ex.right, sample_weight=ex.weight)
    # Fold the scaling into the weights so the service needs no scaler.
    weights = model.coef_[0] / scaler.scale_
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * scaler.mean_ / scaler.scale_))
    conf = model.predict_proba(scaler.transform(x))[:, 1]

    def cost(threshold: float) -> float:
        answered = conf >= threshold
        return float(np.sum(ex.weight * (answered & ~ex.right)) * wrong_cost - np.sum(ex.weight * (answered & ex.right)))

    thresholds = np.round(np.arange(0.3, 0.96, 0.01), 2)
    return Fit(weights, bias, float(min(thresholds, key=lambda t: (cost(t), t))))


def outcomes(answered: np.ndarray, ex: Examples) -> np.ndarray:
    """Correct: in-domain answered with the right entry, out-of-scope not answered."""
    return np.where(ex.in_domain, answered & ex.right, ~answered)


def cross_validate(ex: Examples, costs: list[float]) -> None:
    """Leave one tuning split out at a time, from the fit and from the unanswered list;
    the external examples always train."""
    held = [g for g in dict.fromkeys(ex.group) if g != EXTERNAL]
    print(f"{'cost':>5} {'held out':>9} {'right':>7} {'wrong':>7} {'OOS routed':>11} {'threshold':>10}")
    for wrong_cost in costs:
        correct = np.zeros(len(ex.group), dtype=bool)
        for g in held:
            x, inside = ex.features(held=g), ex.group == g
            f = fit(x[~inside], ex.subset(~inside), wrong_cost)
            part, answered = ex.subset(inside), f.answered(x[inside])
            correct[inside] = outcomes(answered, part)
            ind = part.in_domain
            print(f"{wrong_cost:>5} {g:>9} {np.mean(correct[inside][ind]):7.1%} {np.mean(answered[ind] & ~part.right[ind]):7.1%} "
                  f"{np.mean(correct[inside][~ind]):11.1%} {f.answer_threshold:10.2f}")
        seed = ex.group != EXTERNAL
        print(f"{wrong_cost:>5} {'all':>9} {correct[seed & ex.in_domain].mean():7.1%} {'':>7} "
              f"{correct[seed & ~ex.in_domain].mean():11.1%}")


def main(
    oos_queries: Annotated[Path | None, typer.Option(help="queries.json of another subject: more out-of-scope examples")] = None,
    ids: Annotated[str, typer.Option(help="which --oos-queries by numeric id: all, odd or even")] = "odd",
    oos_weight: Annotated[
        float, typer.Option(help="weight of each --oos-queries example against one tune query")
    ] = 0.3,
    wrong_cost: Annotated[float, typer.Option(min=1.0, help="a wrong answer costs this many missed ones")] = WRONG_COST,
    cv: Annotated[bool, typer.Option(help="leave-one-split-out figures for each of --cv-costs, then the fit")] = False,
    cv_costs: Annotated[str, typer.Option(help="comma-separated wrong-answer costs for --cv")] = "1.5,2,3,5",
) -> None:
    settings = Settings(log_level="WARNING")
    corpus = load_corpus(settings.corpus_dir)
    labelled: list[tuple[str, str | None, str]] = [
        (q.query, q.id, q.split) for q in load_eval_set(settings.corpus_dir, corpus) if q.split in TUNING_SPLITS
    ]
    labelled += [(u.query, None, u.source) for u in corpus.unanswered]
    external = list(select_ids(load_queries(oos_queries), ids).values()) if oos_queries else []
    labelled += [(q, None, EXTERNAL) for q in external]
    embedder = load_embedder(settings)
    ensure_index(settings, corpus, embedder, TextProcessor(corpus.synonyms))
    ex = collect(load_engine(settings, embedder).retriever, corpus, labelled, oos_weight)

    seed = ex.group != EXTERNAL
    print(f"tuning splits {', '.join(TUNING_SPLITS)}: {(seed & ex.in_domain).sum()} in-domain, top-1 "
          f"{ex.right[seed & ex.in_domain].mean():.3f}; {(seed & ~ex.in_domain).sum()} out-of-scope"
          f"; {len(external)} from {oos_queries} ({ids} ids), weight {oos_weight}")
    if cv:
        cross_validate(ex, [float(c) for c in cv_costs.split(",")])

    x = ex.features()
    f = fit(x, ex, wrong_cost)
    answered = f.answered(x)
    correct = outcomes(answered, ex)
    ind, oos = seed & ex.in_domain, seed & ~ex.in_domain
    print(f"fitted, in-sample, at threshold {f.answer_threshold}: in-domain answered right {correct[ind].mean():.3f}, "
          f"wrong {(answered & ~ex.right)[ind].mean():.3f}; out-of-scope routed {correct[oos].mean():.3f}; "
          f"{answered[~seed].sum()} of {len(external)} others answered")
    print("chosen settings (defaults in bot/config.py):")
    print(f"  calibration_weights = {[round(float(w), 3) for w in f.weights]}")
    print(f"  calibration_bias = {round(f.bias, 3)}")
    print(f"  answer_threshold = {f.answer_threshold}")
    print(f"  suggest_threshold = {round(f.answer_threshold / 3, 2)}")


if __name__ == "__main__":
    typer.run(main)
