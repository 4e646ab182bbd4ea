"""Leave-one-split-out estimate of triage on a split whose messages chose nothing.

The cue lists and thresholds of triage score near 100% on the splits they were tuned on
and much lower on new ones, so in-sample figures cannot choose between two versions of
triage. For each seen split of corpus/eval_reach.yaml this script chooses the triage
thresholds (safety margins, classifier thresholds, small-talk similarity) on the other
splits only, then runs the held-out split through the whole query path
(`Answerer.ask`) with the chosen values, and reports per fold and the mean over folds:
urgent and crisis recall, false alarms on non-urgent narratives (style not_urgent) and
on everything else, small talk recognized, FAQ questions shadowed by small talk,
in-domain right/wrong and out-of-scope routed.

What this does not remove: the cue words and example messages in corpus/ were written by
people who had read these splits, so every fold is still partly in-sample; only blind
splits by new authors measure that part.

    OMP_NUM_THREADS=1 python scripts/cv_triage.py               # settings in force, then tuned per fold
    OMP_NUM_THREADS=1 python scripts/cv_triage.py --classifier  # the same with the classifier fitted and tuned
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated

import numpy as np
import typer

from bot.answer import Answerer
from bot.config import Settings
from bot.corpus import REACH_HELD_OUT_SPLIT, REACH_SPLITS
from bot.engine import calm_texts, load_engine
from bot.language import detect_language
from bot.privacy import mask, strip_placeholders
from bot.evaluate_reach import LABELS, ReachItem, ReachOutcome, load_reach_set, run_reach
from bot.triage import DEFAULT_L2, SMALLTALK_MAX_CHARS, Safety, Triage, SafetyMargins, build_triage, load_triage_corpus
from bot.types import Matrix

# A false alarm on a narrative costs this many missed emergencies when thresholds are chosen:
# both hurt, and the targets (recall >= 95%, false alarms <= 2%) weigh them about so.
FALSE_ALARM_COST = 2.0
# Small talk that hides an FAQ question costs this many unrecognized greetings.
SHADOW_COST = 3.0

# Candidate values; the settings in force are always among them.
URGENT_MARGINS = (0.0, 0.01, 0.02, 0.03, 0.05, 1.0)
DANGER_MARGINS = (-0.01, 0.0, 0.01, 0.02, 0.03)
CRISIS_MARGINS = (0.02, 0.03, 0.05, 0.08, 1.0)
URGENT_FLOORS = (0.85, 0.86, 0.87, 0.88, 0.90)
SMALLTALK_SIMILARITIES = (0.88, 0.89, 0.90, 0.91, 0.92, 0.93, 0.94, 0.96, 1.01)
PROBABILITIES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)


@dataclass(frozen=True)
class Probe:
    """What triage reads of one message, computed once: the rest is cheap to redo."""

    item: ReachItem
    query: str
    """The message as triage reads it (personal data taken out)."""
    vectors: Matrix
    smalltalk_intent: int | None
    """The small-talk intent when the message is nothing else (and not alarming)."""
    answered: bool
    nearest_similarity: float


def probes(answerer: Answerer, items: Sequence[ReachItem]) -> list[Probe]:
    """Each message read as `Answerer.ask` reads it, up to where the thresholds come in."""
    triage = answerer.triage
    assert triage is not None
    out = []
    for item in items:
        query = item.query
        masked = mask(query)
        if masked.kinds:
            query = strip_placeholders(masked.text) or query
        to_rank, intent = triage.smalltalk.split(query)
        if intent is not None and triage.safety.alarming(query):
            to_rank, intent = query, None
        ranking = answerer.retriever.ranking(to_rank)
        vectors = (ranking.base_vectors if ranking.base_vectors is not None else ranking.vectors)[:1]
        calibration = answerer.calibration_for(detect_language(item.query))
        answered = answerer.reply(ranking.candidates, None, calibration).answered
        _, similarity = triage.smalltalk.nearest(vectors)
        out.append(Probe(item, query, vectors, intent, answered, similarity))
    return out


def safety_cost(safety: Safety, probes_: Sequence[Probe]) -> float:
    """Missed emergencies (or the wrong kind) plus weighted false alarms, where small talk
    has not already taken the message."""
    cost = 0.0
    for p in probes_:
        if p.smalltalk_intent is not None:
            got = None
        else:
            got = safety.assess(p.query, p.vectors)
        expect = p.item.expect
        if expect in ("urgent", "crisis"):
            cost += got != expect
        elif got is not None:
            cost += FALSE_ALARM_COST
    return cost


def smalltalk_cost(similarity: float, probes_: Sequence[Probe], urgent: Callable[[Probe], bool]) -> float:
    cost = 0.0
    for p in probes_:
        if p.smalltalk_intent is not None or urgent(p):
            continue
        talk = not p.answered and len(p.query.strip()) <= SMALLTALK_MAX_CHARS and p.nearest_similarity >= similarity
        if p.item.expect == "smalltalk":
            cost += not talk
        elif p.item.expect not in LABELS:
            cost += SHADOW_COST * talk
    return cost


def candidates(classifier: bool) -> dict[str, tuple[float, ...]]:
    """The values each threshold may take; the classifier's only when it is on."""
    values: dict[str, tuple[float, ...]] = {
        "urgent_margin": URGENT_MARGINS,
        "urgent_danger_margin": DANGER_MARGINS,
        "crisis_margin": CRISIS_MARGINS,
        "urgent_floor": URGENT_FLOORS,
    }
    if classifier:
        values |= {"urgent_probability": PROBABILITIES, "crisis_probability": PROBABILITIES}
    return values


def tune(safety: Safety, start: dict[str, float], choices: dict[str, tuple[float, ...]], train: Sequence[Probe]) -> dict[str, float]:
    """Coordinate descent from the settings in force: each threshold in turn takes its best
    value with the others held, until a full round changes nothing (ties keep the current one)."""
    best = dict(start)
    best_cost = safety_cost(with_values(safety, best), train)
    for _ in range(5):
        changed = False
        for name, options in choices.items():
            for option in options:
                trial = best | {name: option}
                cost = safety_cost(with_values(safety, trial), train)
                if cost < best_cost:
                    best, best_cost, changed = trial, cost, True
        if not changed:
            break
    return best


def with_values(safety: Safety, values: dict[str, float]) -> Safety:
    return safety.with_margins(SafetyMargins(**{MARGIN_FIELDS[k]: v for k, v in values.items()}))


MARGIN_FIELDS = {
    "urgent_margin": "urgent",
    "urgent_danger_margin": "danger",
    "crisis_margin": "crisis",
    "urgent_floor": "urgent_floor",
    "urgent_probability": "urgent_probability",
    "crisis_probability": "crisis_probability",
}


def current_values(settings: Settings) -> dict[str, float]:
    return {
        "urgent_margin": settings.urgent_margin,
        "urgent_danger_margin": settings.urgent_danger_margin,
        "crisis_margin": settings.crisis_margin,
        "urgent_floor": settings.urgent_floor,
        "urgent_probability": settings.urgent_probability,
        "crisis_probability": settings.crisis_probability,
    }


def figures(outcomes: Sequence[ReachOutcome]) -> dict[str, float]:
    """The figures eval-reach reports, as fractions (NaN when a split has no such message)."""

    def share(members: list[ReachOutcome], hit: Callable[[ReachOutcome], bool]) -> float:
        return sum(map(hit, members)) / len(members) if members else float("nan")

    of = lambda test: [o for o in outcomes if test(o)]  # noqa: E731
    in_domain = of(lambda o: o.item.expect not in LABELS)
    return {
        "urgent": share(of(lambda o: o.item.expect == "urgent"), lambda o: o.right),
        "crisis": share(of(lambda o: o.item.expect == "crisis"), lambda o: o.right),
        "false_alarm": share(of(lambda o: o.item.style == "not_urgent"), lambda o: o.reply.decision == "urgent"),
        "other_alarms": sum(
            o.reply.decision == "urgent" for o in of(lambda o: o.item.expect not in ("urgent", "crisis") and o.item.style != "not_urgent")
        ),
        "smalltalk": share(of(lambda o: o.item.expect == "smalltalk"), lambda o: o.right),
        "shadowed": sum(o.reply.decision == "smalltalk" for o in in_domain),
        "right": share(in_domain, lambda o: o.outcome == "right"),
        "wrong": share(in_domain, lambda o: o.outcome == "wrong"),
        "oos_routed": share(of(lambda o: o.item.expect == "out_of_scope"), lambda o: o.right),
    }


COLUMNS = ("urgent", "crisis", "false_alarm", "other_alarms", "smalltalk", "shadowed", "right", "wrong", "oos_routed")


def row(name: str, f: dict[str, float]) -> str:
    cells = [f"{f[c]:>6.0f}" if c in ("other_alarms", "shadowed") else f"{f[c]:>6.1%}" for c in COLUMNS]
    return f"{name:<8} " + " ".join(cells)


def main(
    fixed: Annotated[bool, typer.Option(help="use the settings in force in every fold instead of tuning")] = False,
    classifier: Annotated[bool, typer.Option(help="fit the classifier and tune its thresholds too")] = False,
    l2: Annotated[float, typer.Option(help="the classifier's L2 penalty")] = DEFAULT_L2,
    hold: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE: a threshold held at this value in every fold (urgent_margin=1 turns a rule off)")
    ] = None,
) -> None:
    settings = Settings(cache_size=4096)
    engine = load_engine(settings)
    answerer = engine.answerer
    classifier = classifier or settings.urgent_probability <= 1.0 or settings.crisis_probability <= 1.0
    if classifier:
        triage_corpus = load_triage_corpus(settings.corpus_dir)
        assert triage_corpus is not None and answerer.triage is not None
        on = replace(answerer.triage.safety.margins, urgent_probability=1.0, crisis_probability=1.0)
        base = engine.faq_index.base.embedder if engine.faq_index.base is not None else engine.faq_index.embedder
        fitted = build_triage(triage_corpus, base, on, calm_texts(engine.corpus), l2)
        answerer.triage = replace(answerer.triage, safety=fitted.safety)
    triage = answerer.triage
    assert triage is not None
    # The held-out split never chooses anything, nor is it scored here.
    items = [i for i in load_reach_set(settings.corpus_dir, engine.corpus) if i.split != REACH_HELD_OUT_SPLIT]
    all_probes = probes(answerer, items)
    choices = candidates(classifier)
    held = {name: float(value) for name, value in (h.split("=", 1) for h in hold or [])}
    for name in held:
        choices.pop(name)
    settings = settings.model_copy(update=held)
    for tuned in (False,) if fixed else (False, True):
        typer.echo("thresholds chosen on the other splits" if tuned else "the settings in force (chosen on all seen splits)")
        report_folds(answerer, triage, items, all_probes, settings, choices if tuned else None)
    if not fixed:
        values = tune(triage.safety, current_values(settings), choices, all_probes)
        typer.echo("chosen on all seen splits (the values to put in bot/config.py): " + " ".join(f"{k}={v:g}" for k, v in values.items()))


def report_folds(
    answerer: Answerer,
    triage: Triage,
    items: Sequence[ReachItem],
    all_probes: Sequence[Probe],
    settings: Settings,
    choices: dict[str, tuple[float, ...]] | None,
) -> None:
    """One row per held-out split and their mean; thresholds tuned on the other splits
    when `choices` are given, the settings in force otherwise."""
    typer.echo(f"{'held out':<8} " + " ".join(f"{c[:6]:>6}" for c in COLUMNS) + "   chosen")
    per_fold = []
    for held_out in (s for s in REACH_SPLITS if s != REACH_HELD_OUT_SPLIT):
        train = [p for p in all_probes if p.item.split != held_out]
        values, similarity = current_values(settings), settings.smalltalk_similarity
        if choices is not None:
            values = tune(triage.safety, values, choices, train)
            chosen = with_values(triage.safety, values)
            urgent = lambda p, s=chosen: s.assess(p.query, p.vectors) is not None  # noqa: E731
            similarity = min(
                SMALLTALK_SIMILARITIES,
                key=lambda s: (smalltalk_cost(s, train, urgent), s != settings.smalltalk_similarity),
            )
        fold_triage = replace(triage, safety=with_values(triage.safety, values))
        fold = Answerer(
            answerer.retriever, answerer.desk, answerer.calibration, answerer.policy,
            triage=fold_triage, smalltalk_similarity=similarity, other_languages=answerer.other_languages,
        )
        f = figures(run_reach(fold, [i for i in items if i.split == held_out]))
        per_fold.append(f)
        shown = " ".join(f"{k}={v:g}" for k, v in values.items()) + f" smalltalk_similarity={similarity:g}"
        typer.echo(row(held_out, f) + "   " + shown)
    mean = {c: statistics.fmean(f[c] for f in per_fold if not np.isnan(f[c])) for c in COLUMNS}
    typer.echo(row("mean", mean))

if __name__ == "__main__":
    typer.run(main)
