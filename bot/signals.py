"""Per-entry signals, whichever path computes them: each entry's best value over a
query's spellings, and z-scores against a signal's mean and spread over the entries
(or over a sample standing for them)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def best_of(signal_sets: Iterable[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Signal by signal, each entry's best value over the query's spellings."""
    return tuple(np.max(values, axis=0) for values in zip(*signal_sets))


class Spread:
    """A signal's mean and standard deviation over a population of entries; a constant
    signal standardizes to zero, so it contributes nothing."""

    def __init__(self, population: np.ndarray) -> None:
        self.mean = population.mean()
        self.std = float(population.std())

    def z(self, values: np.ndarray) -> np.ndarray:
        if self.std < 1e-9:
            return np.zeros_like(values)
        return (values - self.mean) / self.std

    def z_of(self, value: float) -> float:
        return 0.0 if self.std < 1e-9 else (value - float(self.mean)) / self.std


def standardize(values: np.ndarray) -> np.ndarray:
    """z-scores over the entries."""
    return Spread(values).z(values)
