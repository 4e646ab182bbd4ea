"""scripts/tune_decision.py: a fit never scores a query against its own source's unanswered questions."""

from __future__ import annotations

import numpy as np
from scripts_loader import load_script

tune_decision = load_script("tune_decision")


def examples() -> tune_decision.Examples:
    # Queries from sources a, b and another FAQ; unanswered questions from a, a and b.
    return tune_decision.Examples(
        ranked=np.zeros((3, 5)),
        cosines=np.array([[0.9, 0.8, 0.4], [0.3, 0.2, 0.95], [0.5, 0.6, 0.7]]),
        sources=np.array(["a", "a", "b"]),
        right=np.array([True, False, False]),
        in_domain=np.array([True, False, False]),
        weight=np.array([1.0, 1.0, 0.3]),
        group=np.array(["a", "b", tune_decision.EXTERNAL]),
    )


def test_each_query_meets_only_the_other_sources_unanswered_questions() -> None:
    assert examples().features()[:, -1].tolist() == [0.4, 0.3, 0.7]


def test_a_held_out_source_leaves_the_list_too() -> None:
    assert examples().features(held="b")[:, -1].tolist() == [0.0, 0.3, 0.6]


def test_subset_keeps_the_unanswered_list() -> None:
    part = examples().subset(np.array([False, True, True]))
    assert part.sources.tolist() == ["a", "a", "b"] and part.features()[:, -1].tolist() == [0.3, 0.7]
