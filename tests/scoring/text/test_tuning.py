"""The tuning procedure: grid, objective, vectorised labels and metrics, grid search."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.text.evaluate import metrics
from services.scoring.text.sentiment import TUNING, Tuning, label, profile_for
from services.scoring.text.tuning import (
    GRID,
    LABELS,
    OBJECTIVES,
    Features,
    Objective,
    ScoreTable,
    best_tuning,
    gold_codes,
    grid,
    label_codes,
    scores_of,
)

POINTS = grid()
GRID_POINTS = st.sampled_from(POINTS)


def test_the_grid_is_the_full_product_and_holds_the_shipped_tunings() -> None:
    assert len(set(POINTS)) == len(POINTS) == int(np.prod([len(v) for v in GRID.values()]))
    for lang, shipped in TUNING.items():
        assert shipped in POINTS, lang


# Scores exactly on a threshold and lengths exactly at pos_max_tokens test the boundaries.
SCORES = st.one_of(st.floats(-1, 1), st.sampled_from(GRID["pos_threshold"] + GRID["neg_threshold"]))
LENGTHS = st.one_of(st.integers(0, 200), st.sampled_from(GRID["pos_max_tokens"]))


@settings(max_examples=300, deadline=None)
@given(
    scores=st.lists(SCORES, min_size=1, max_size=50),
    lengths=st.lists(LENGTHS, min_size=50, max_size=50),
    t=GRID_POINTS,
)
def test_vectorised_labels_agree_with_sentiment_label(
    scores: list[float], lengths: list[int], t: Tuning
) -> None:
    n = lengths[: len(scores)]
    profile = replace(profile_for("en"), tuning=t)
    expected = [label(s, k, profile).value for s, k in zip(scores, n, strict=True)]
    codes = label_codes(np.array(scores), np.array(n, dtype=np.float64), t)
    assert [LABELS[c] for c in codes] == expected


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS)), min_size=1))
def test_confusion_matrix_metrics_equal_the_evaluation_metrics(pairs: list[tuple[str, str]]) -> None:
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    fast = scores_of(gold_codes(gold), gold_codes(pred))
    slow = metrics(gold, pred)
    assert fast["accuracy"] == pytest.approx(slow["accuracy"], abs=5e-5)
    assert fast["macro_f1"] == pytest.approx(slow["macro_f1"], abs=5e-5)


def test_the_german_objective_puts_the_macro_f1_floor_first() -> None:
    de = OBJECTIVES["de"]
    majority_like = {"accuracy": 0.70, "macro_f1": 0.40}
    balanced = {"accuracy": 0.66, "macro_f1": 0.56}
    assert de.key(balanced) > de.key(majority_like)
    # Nobody reaches the floor: the point nearest to it wins, not the most accurate.
    assert de.key({"accuracy": 0.6, "macro_f1": 0.5}) > de.key(majority_like)
    assert OBJECTIVES["en"].key(majority_like) < OBJECTIVES["en"].key(balanced)


def _synthetic(n: int, seed: int) -> list[Features]:
    """Texts as clause valences and word counts, spread over the range the rules act on."""
    rng = random.Random(seed)
    return [
        ([(rng.uniform(0, 3), rng.uniform(0, 3)) for _ in range(rng.randint(1, 3))], rng.randint(1, 120))
        for _ in range(n)
    ]


@pytest.mark.parametrize("target", [TUNING["en"], TUNING["de"], POINTS[0], POINTS[-1], POINTS[301]])
def test_grid_search_recovers_the_tuning_that_labelled_the_data(target: Tuning) -> None:
    table = ScoreTable(_synthetic(4000, seed=7), profile_for("en"), POINTS)
    gold = table.predict(target)
    perfect = [t for t in POINTS if scores_of(gold, table.predict(t))["macro_f1"] == 1.0]
    assert perfect == [target]  # the synthetic set tells every grid point apart
    for objective in (OBJECTIVES["en"], OBJECTIVES["de"], Objective("accuracy")):
        chosen, scores = best_tuning(table, gold, objective, POINTS)
        assert chosen == target and scores == {"accuracy": 1.0, "macro_f1": 1.0}


def test_grid_search_scores_only_the_given_rows() -> None:
    table = ScoreTable(_synthetic(4000, seed=11), profile_for("en"), POINTS)
    first, second = TUNING["en"], TUNING["de"]
    # The first half is labelled by one tuning, the second by another.
    gold = np.concatenate([table.predict(first)[:2000], table.predict(second)[2000:]])
    halves = np.arange(2000, dtype=np.intp), np.arange(2000, 4000, dtype=np.intp)
    assert best_tuning(table, gold, OBJECTIVES["en"], POINTS, halves[0])[0] == first
    assert best_tuning(table, gold, OBJECTIVES["en"], POINTS, halves[1])[0] == second
