"""A held-out estimate of the analyser's quality: stratified k-fold cross-validation of the
tuning procedure (tuning.py). Each fold is scored by the Tuning chosen on the other k-1
folds, so no row helps choose the rules it is scored with.

The shipped Tuning was chosen on the very sets the evaluation reports; its figures there are
in-sample and optimistic. The cross-validated figures estimate what the procedure achieves on
new texts like these. They are still not fully held out: lexicons and rules were written with
error analysis on the same sets, which no resampling undoes.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from services.scoring.text.sentiment import TUNING, Tuning
from services.scoring.text.tuning import (
    OBJECTIVES,
    Codes,
    Objective,
    ScoreTable,
    best_tuning,
    gold_codes,
    grid,
    scores_of,
)

K, SEED = 5, 20_170_915  # fixed: the report is reproducible run to run
_METRICS = ("accuracy", "macro_f1")


def stratified_folds(gold: Sequence[str], k: int = K, seed: int = SEED) -> list[list[int]]:
    """Row indices of k disjoint folds covering all rows; each class is spread over the folds
    as evenly as possible (sizes differ by at most one), the order within a class shuffled."""
    rng = random.Random(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    position = 0  # carried across classes so that the fold sizes balance as well
    for cls in sorted(set(gold)):
        members = [i for i, g in enumerate(gold) if g == cls]
        rng.shuffle(members)
        for i in members:
            folds[position % k].append(i)
            position += 1
    return [sorted(f) for f in folds]


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation, range and the values themselves, rounded."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "mean": round(statistics.fmean(values), 4),
        "sd": round(sd, 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "folds": [round(v, 4) for v in values],
    }


def _changes(chosen: Tuning, reference: Tuning) -> dict[str, float]:
    """The parameters in which `chosen` differs from `reference`, with chosen's values."""
    ref = asdict(reference)
    return {name: value for name, value in asdict(chosen).items() if ref[name] != value}


def _held_out(
    table: ScoreTable, truth: Codes, objective: Objective, points: list[Tuning], fold: list[int]
) -> tuple[Tuning, dict[str, float]]:
    """Tune on every row outside `fold`, score on `fold`."""
    test = np.array(fold, dtype=np.intp)
    train = np.setdiff1d(np.arange(len(truth), dtype=np.intp), test)
    chosen, _ = best_tuning(table, truth, objective, points, train)
    return chosen, scores_of(truth[test], table.predict(chosen, test))


def cross_validate(texts: Sequence[str], gold: Sequence[str], lang: str) -> dict[str, Any]:
    """Held-out accuracy and macro-F1 next to the in-sample figures and tunings."""
    points = grid()
    shipped = TUNING.get(lang, Tuning())
    objective = OBJECTIVES.get(lang, Objective("macro_f1"))
    table = ScoreTable.of_texts(texts, lang, [*points, shipped])
    truth = gold_codes(gold)
    folds = [_held_out(table, truth, objective, points, f) for f in stratified_folds(gold)]
    best, best_scores = best_tuning(table, truth, objective, points)
    return {
        "k": K,
        "seed": SEED,
        "objective": objective.describe(),
        "grid_points": len(points),
        "held_out": {m: spread([s[m] for _, s in folds]) for m in _METRICS},
        "in_sample_shipped": _rounded(scores_of(truth, table.predict(shipped))),
        "in_sample_grid_best": {**_rounded(best_scores), "changes": _changes(best, shipped)},
        "folds_choosing_shipped": sum(chosen == shipped for chosen, _ in folds),
        "fold_changes": [_changes(chosen, shipped) for chosen, _ in folds],
    }


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {m: round(v, 4) for m, v in scores.items()}
