"""The triage classifier's fit on its own: small synthetic sets whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from bot.triage_model import CALM, CRISIS, URGENT, fit


def blobs(sizes: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Three clusters in 20 dimensions, one per class, told apart by three of them."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for label, size in zip((CALM, URGENT, CRISIS), sizes):
        x = rng.normal(size=(size, 20))
        x[:, label] += 4.0
        rows.append(x)
        labels += [label] * size
    return np.vstack(rows), labels


def test_the_fit_separates_classes_it_has_seen() -> None:
    x, y = blobs((60, 60, 60))
    test_x, test_y = blobs((30, 30, 30), seed=1)
    model = fit(x, y, l2=0.01)
    assert (model.probabilities(test_x).argmax(axis=1) == np.asarray(test_y)).mean() >= 0.95


def test_a_rare_class_is_not_drowned_by_a_common_one() -> None:
    """Calm examples outnumber the urgent ones many times; balanced weights still find urgent."""
    x, y = blobs((900, 20, 20))
    test_x, test_y = blobs((0, 50, 0), seed=2)
    p = fit(x, y, l2=0.01).probabilities(test_x)
    assert (p.argmax(axis=1) == URGENT).mean() >= 0.9


def test_the_fit_is_deterministic() -> None:
    x, y = blobs((40, 10, 10))
    first, second = fit(x, y, l2=0.1), fit(x, y, l2=0.1)
    assert np.array_equal(first.weights, second.weights) and np.array_equal(first.bias, second.bias)


def test_a_stronger_penalty_gives_less_confident_probabilities() -> None:
    x, y = blobs((60, 60, 60))
    loose, tight = fit(x, y, l2=0.001), fit(x, y, l2=10.0)
    assert tight.probabilities(x).max(axis=1).mean() < loose.probabilities(x).max(axis=1).mean()
    assert np.abs(tight.weights).sum() < np.abs(loose.weights).sum()


def test_probabilities_sum_to_one_even_for_far_away_messages() -> None:
    x, y = blobs((30, 30, 30))
    p = fit(x, y, l2=0.01).probabilities(x * 1e4)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)


def test_a_class_without_examples_is_refused() -> None:
    x, y = blobs((30, 30, 0))
    with pytest.raises(ValueError, match="every class needs examples"):
        fit(x, y, l2=0.01)
