"""How the per-language decision rules (sentiment.Tuning) are chosen: an explicit grid, an
objective, and `best_tuning`, which picks the grid point that scores best on given rows.

Only aggregate/label depend on Tuning; the lexical part (clause valences, word count) does
not, so `ScoreTable` computes it once per text and the score of every text once per distinct
(neg_weight, long_tokens, long_exponent). Labelling and scoring a grid point is then a few
vectorised operations: the whole grid over 2.5k texts takes well under a second.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from services.scoring.text.analyse import lexical
from services.scoring.text.sentiment import Profile, Tuning, Valence, aggregate, profile_for

LABELS = ("negative", "neutral", "positive")  # label codes 0, 1, 2
_NEG, _NEU, _POS = 0, 1, 2
Codes = npt.NDArray[np.int8]
Floats = npt.NDArray[np.float64]

# The grid: every combination of these values (4·4·3·3·2·2 = 576 points), the shipped tunings
# (sentiment.TUNING) among them. A wider grid (1,920 points: neg_threshold 0 to -0.7, neg_weight
# up to 3, long_tokens 10) raised the in-sample figures by < 0.005 but not the held-out ones
# (crossval.py; en macro-F1 -0.006, de accuracy +0.004 with macro-F1 -0.007 below its floor):
# more freedom fits these sets' noise, so the grid stays this size.
GRID: dict[str, tuple[float, ...]] = {
    "pos_threshold": (0.3, 0.5, 0.7, 0.9),
    "neg_threshold": (-0.05, -0.15, -0.3, -0.5),
    "neg_weight": (1.0, 1.5, 2.0),
    "long_tokens": (20, 30, 60),
    "long_exponent": (0.5, 1.0),
    "pos_max_tokens": (20, 10_000),
}
_SCORE_PARAMS = ("neg_weight", "long_tokens", "long_exponent")  # those `aggregate` reads


def grid() -> list[Tuning]:
    """All grid points, in a fixed order (ties in the objective go to the earlier one)."""
    rows: list[dict[str, Any]] = [  # ints stay ints: long_tokens, pos_max_tokens
        dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())
    ]
    return [Tuning(**row) for row in rows]


@dataclass(frozen=True)
class Objective:
    """Maximise `metric`, among grid points whose `floor_metric` reaches `floor`; the other
    metric breaks ties. If no point reaches the floor, the one nearest to it wins."""

    metric: str  # "accuracy" | "macro_f1"
    floor_metric: str | None = None
    floor: float = 0.0

    def key(self, scores: dict[str, float]) -> tuple[bool, float, float]:
        other = "accuracy" if self.metric == "macro_f1" else "macro_f1"
        if self.floor_metric is None or scores[self.floor_metric] >= self.floor:
            return True, scores[self.metric], scores[other]
        return False, scores[self.floor_metric], scores[self.metric]

    def describe(self) -> str:
        floor = f" subject to {self.floor_metric} >= {self.floor}" if self.floor_metric else ""
        return f"maximise {self.metric}{floor}"


# The objectives mirror the targets. English: macro-F1 (>= 0.65), since the classes are
# unbalanced and accuracy would reward calling everything negative. German: accuracy (>= 0.75,
# the measure GermEval 2017 reports) with a macro-F1 floor (>= 0.55), without which the
# majority class (accuracy 0.65, macro-F1 0.26) is nearly as good as any rule.
OBJECTIVES: dict[str, Objective] = {
    "en": Objective("macro_f1"),
    "de": Objective("accuracy", floor_metric="macro_f1", floor=0.55),
}


def gold_codes(gold: Sequence[str]) -> Codes:
    return np.array([LABELS.index(g) for g in gold], dtype=np.int8)


def label_codes(score: Floats, n_tokens: Floats, t: Tuning) -> Codes:
    """sentiment.label over arrays (a test checks they agree)."""
    codes = np.full(score.shape, _NEU, dtype=np.int8)
    codes[score <= t.neg_threshold] = _NEG
    codes[(score >= t.pos_threshold) & (n_tokens <= t.pos_max_tokens)] = _POS
    return codes


def scores_of(gold: Codes, pred: Codes) -> dict[str, float]:
    """Accuracy and macro-F1 from the confusion matrix (per-class F1 = 2·tp / (pred + gold),
    0 for a class neither predicted nor present, as in evaluate.f1_scores)."""
    confusion = np.bincount(gold * 3 + pred, minlength=9).reshape(3, 3)
    tp = np.diag(confusion).astype(np.float64)
    denom = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * tp, denom, out=np.zeros(3), where=denom > 0)
    return {"accuracy": float(tp.sum() / len(gold)), "macro_f1": float(f1.mean())}


Features = tuple[list[Valence], int]  # a text's clause valences and word count


class ScoreTable:
    """The scores of a fixed set of texts under every grid point's aggregate parameters."""

    def __init__(self, features: Sequence[Features], profile: Profile, points: Sequence[Tuning]):
        self.n_tokens: Floats = np.array([n for _, n in features], dtype=np.float64)
        self._scores: dict[tuple[float, ...], Floats] = {}
        for t in points:
            key = _score_key(t)
            if key not in self._scores:
                tuned = replace(profile, tuning=t)
                values = [aggregate(vals, n, tuned) for vals, n in features]
                self._scores[key] = np.array(values, dtype=np.float64)

    @classmethod
    def of_texts(cls, texts: Sequence[str], lang: str, points: Sequence[Tuning]) -> ScoreTable:
        parts = [lexical(text, lang) for text in texts]
        return cls([(p.valences, p.n_words) for p in parts], profile_for(lang), points)

    def predict(self, t: Tuning, rows: npt.NDArray[np.intp] | slice = slice(None)) -> Codes:
        """Label codes of the texts at `rows` under tuning `t` (a point of the table's grid)."""
        return label_codes(self._scores[_score_key(t)][rows], self.n_tokens[rows], t)


def _score_key(t: Tuning) -> tuple[float, ...]:
    return tuple(float(getattr(t, name)) for name in _SCORE_PARAMS)


def best_tuning(
    table: ScoreTable,
    gold: Codes,
    objective: Objective,
    points: Sequence[Tuning],
    rows: npt.NDArray[np.intp] | None = None,
) -> tuple[Tuning, dict[str, float]]:
    """The grid point that maximises `objective` on `rows` (all rows if None), and its scores."""
    where: npt.NDArray[np.intp] | slice = slice(None) if rows is None else rows
    truth = gold[where]
    scored = [(t, scores_of(truth, table.predict(t, where))) for t in points]
    return max(scored, key=lambda ts: objective.key(ts[1]))  # max keeps the first of ties
