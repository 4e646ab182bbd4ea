"""A small linear classifier of messages into calm, urgent and crisis, fitted at start.

Cue words and margins to the nearest example catch the messages their authors thought
of; a classifier over the whole embedding learns which directions of meaning separate
danger now from a consultation about danger, from every example at once, so a message
worded unlike any single example can still be read. It is multinomial logistic
regression with an L2 penalty, fitted with numpy by accelerated gradient descent from
zero (deterministic, well under a second for a few thousand examples), so the service
needs no machine-learning library and the model always matches the examples in corpus/.
The cue words (danger, right now, ongoing, past, self-harm, figure of speech) enter as
six more features, so the model can learn, for example, that a past-time word lowers
the urgency of a message about violence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bot.types import Matrix

CLASSES = ("calm", "urgent", "crisis")
CALM, URGENT, CRISIS = range(len(CLASSES))
CUE_NAMES = ("danger", "right_now", "now", "past", "self_harm", "figure")
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DangerModel:
    """Standardization and logistic weights: p = softmax(((x - mean) / scale) @ weights + bias)."""

    mean: Floats
    scale: Floats
    weights: Floats
    bias: Floats

    def probabilities(self, features: Floats) -> Floats:
        """One row of class probabilities (calm, urgent, crisis) per row of features."""
        z = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def features(vectors: Matrix, cues: Sequence[Sequence[bool]]) -> Floats:
    """The message embeddings with the six cue indicators beside them."""
    return np.hstack([np.asarray(vectors, dtype=np.float64), np.asarray(cues, dtype=np.float64).reshape(len(vectors), -1)])


def fit(x: Floats, labels: Sequence[int], l2: float, steps: int = 300) -> DangerModel:
    """Fit by accelerated gradient descent on the class-balanced cross-entropy plus
    l2 * |w|^2 / 2.

    Each class weighs the same in total however many examples it has: calm examples
    (FAQ questions and the like) far outnumber the urgent and crisis ones, and a model
    fitted on raw counts would call almost everything calm. Features are standardized
    first (the embeddings' dimensions have very different spreads; the cue indicators
    are 0/1). The step is 1 / L for L the gradient's Lipschitz constant (half the largest
    eigenvalue of the weighted feature covariance, plus l2), so descent cannot diverge
    whatever the examples; momentum makes a few hundred steps enough.
    """
    y = np.asarray(labels, dtype=np.int64)
    n, d = x.shape
    k = len(CLASSES)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"every class needs examples; counts per class {dict(zip(CLASSES, counts))}")
    sample_weight = (n / (k * counts))[y] / n
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((n, 1))])
    lipschitz = 0.5 * float(np.linalg.eigvalsh(z.T @ (z * sample_weight[:, None]))[-1]) + l2
    rate = 1.0 / lipschitz
    onehot = np.eye(k)[y]
    penalty = np.ones((d + 1, 1))
    penalty[-1] = 0.0  # the bias is not held towards zero
    w = np.zeros((d + 1, k))
    previous = w
    for step in range(1, steps + 1):
        look = w + (step - 1) / (step + 2) * (w - previous)
        logits = z @ look
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        gradient = z.T @ ((p - onehot) * sample_weight[:, None]) + l2 * penalty * look
        previous, w = w, look - rate * gradient
    return DangerModel(mean, scale, w[:-1], w[-1])
