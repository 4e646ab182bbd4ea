"""Fit the confidence model for messages that are not in Japanese.

A question in English or Vietnamese shares no words with the Japanese FAQ, so the lexical
features of the main confidence model (coverage, reading BM25) are zero for it and the
bot never answers, although the multilingual model ranks the right entry first. This
fits a logistic model on the dense features alone (fused score, margin, question
similarity, similarity to a known unanswered question) on the tune half of
corpus/eval_reach.yaml: its non-Japanese FAQ questions (the top entry right or not) and
out-of-scope messages. The held-out half is never read. Prints the settings to use.

Example:
    .venv/bin/python scripts/tune_language_calibration.py
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.linear_model import LogisticRegression

from bot.answer import Calibration
from bot.config import Settings
from bot.engine import load_engine
from bot.evaluate_reach import LABELS, load_reach_set
from bot.language import detect_language

# score, margin, question similarity, coverage, reading BM25, unanswered similarity
DENSE = (0, 1, 2, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularization strength (default 1)")
    args = parser.parse_args()
    settings = Settings(log_level="WARNING")
    engine = load_engine(settings)
    answerer = engine.answerer
    assert answerer.triage is not None
    rows, labels = [], []
    for item in load_reach_set(settings.corpus_dir, engine.corpus):
        if item.split != "tune" or item.expect in LABELS[1:] or detect_language(item.query) == "ja":
            continue
        text, intent = answerer.triage.smalltalk.split(item.query)
        if intent is not None:
            continue
        candidates = engine.retriever.rank(text)
        runner_up = candidates[1].score if len(candidates) > 1 else 0.0
        rows.append([Calibration.features(candidates[0], runner_up)[i] for i in DENSE])
        labels.append(int(candidates[0].entry.id == item.expect))
    x, y = np.array(rows), np.array(labels)
    # Fitted on standardized features (so regularization treats them alike), then turned
    # back into weights on the raw features the service computes.
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = LogisticRegression(C=args.c, max_iter=5000).fit((x - mean) / std, y)
    raw = model.coef_[0] / std
    weights = [0.0] * 6
    for slot, w in zip(DENSE, raw):
        weights[slot] = round(float(w), 3)
    bias = round(float(model.intercept_[0] - (raw * mean).sum()), 3)
    probs = 1.0 / (1.0 + np.exp(-(x @ np.array([weights[i] for i in DENSE]) + bias)))
    threshold = settings.answer_threshold
    answered = probs >= threshold
    print(f"{len(y)} messages ({y.sum()} with the right entry on top, {len(y) - y.sum()} not)")
    print(f"at the answer threshold {threshold}: {int((answered & (y == 1)).sum())} answered right, "
          f"{int((answered & (y == 0)).sum())} answered wrong or out of scope")
    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        a = probs >= t
        print(f"  threshold {t}: {int((a & (y == 1)).sum())} right, {int((a & (y == 0)).sum())} wrong")
    print(f"FAQBOT_CALIBRATION_WEIGHTS_OTHER_LANGUAGES='{json.dumps(weights)}'")
    print(f"FAQBOT_CALIBRATION_BIAS_OTHER_LANGUAGES={bias}")


if __name__ == "__main__":
    main()
