"""The analyser on the shared labelled sets (evaluation only; never shipped).

The analyser is deterministic, so the bounds are the targets that text-1.1.0 reaches (its
numbers in the comments); a regression fails. Skipped when ../shared/data is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.scoring.text.evaluate import DATASETS, evaluate

DATA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    missing = [n for n in DATASETS.values() if not (DATA_DIR / n).exists()]
    if missing:
        pytest.skip(f"labelled sets absent from {DATA_DIR}: {', '.join(missing)}")
    return evaluate(DATA_DIR)


def test_english_airline_tweets_reach_the_target(report: dict[str, Any]) -> None:
    en = report["en"]
    assert en["n"] == 2500
    assert en["macro_f1"] >= 0.65  # target; text-1.1.0: 0.656 (VADER 0.455)
    assert en["accuracy"] >= 0.68  # text-1.1.0: 0.682 (majority class 0.622)
    assert en["accuracy"] > en["majority_baseline"]["accuracy"]
    if en["vader_macro_f1"] is not None:
        assert en["macro_f1"] > en["vader_macro_f1"] + 0.15


def test_german_germeval_reaches_the_targets(report: dict[str, Any]) -> None:
    de = report["de"]
    assert de["n"] == 2555
    # Targets; text-1.1.0 reaches accuracy 0.7523 and macro-F1 0.5573 (majority 0.654/0.264),
    # narrowly and in-sample only: its thresholds were tuned on this same set (held out: below).
    assert de["accuracy"] >= 0.75
    assert de["macro_f1"] >= 0.55
    assert de["accuracy"] > de["majority_baseline"]["accuracy"] + 0.08
    if de["vader_macro_f1"] is not None:
        assert de["macro_f1"] > de["vader_macro_f1"]


def test_latency_per_comment_is_reported(report: dict[str, Any]) -> None:
    # The target (<= 5 ms per comment on one core) is judged by `make bench` (text section),
    # not here: timings on a shared machine do not belong in a test.
    for lang in ("en", "de"):
        for clock in ("cpu_ms", "latency_ms"):
            timing = report[lang][clock]
            assert 0 < timing["median"] <= timing["p99"]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_cross_validated_figures_are_reported_beside_the_in_sample_ones(
    report: dict[str, Any], lang: str
) -> None:
    cv = report[lang]["cross_validation"]
    assert cv["k"] == 5 and cv["grid_points"] >= 100
    # The fast path (lexical part once, rules per grid point) reproduces analyse() exactly.
    shipped = cv["in_sample_shipped"]
    assert shipped == {"accuracy": report[lang]["accuracy"], "macro_f1": report[lang]["macro_f1"]}
    for metric in ("accuracy", "macro_f1"):
        held_out = cv["held_out"][metric]
        assert len(held_out["folds"]) == 5 and held_out["sd"] > 0
        # Tuned and scored on the same rows is optimistic: held out is no better, within noise
        # (two standard errors of the mean over the folds).
        assert held_out["mean"] <= shipped[metric] + 2 * held_out["sd"] / 5**0.5
    # The shipped rules are the grid's in-sample optimum: the grid reproduces their tuning.
    assert cv["in_sample_grid_best"]["changes"] == {}
    assert cv["folds_choosing_shipped"] >= 3


def test_held_out_quality(report: dict[str, Any]) -> None:
    # Honest figures (5-fold CV of the tuning procedure), text-1.1.0 in the comments. English
    # meets its macro-F1 target held out; German accuracy does not (0.745 vs >= 0.75).
    en, de = report["en"]["cross_validation"], report["de"]["cross_validation"]
    assert en["held_out"]["macro_f1"]["mean"] >= 0.65  # 0.6549 +- 0.027 (sd over folds)
    assert de["held_out"]["accuracy"]["mean"] >= 0.74  # 0.7448 +- 0.015; in-sample 0.7523
    assert de["held_out"]["macro_f1"]["mean"] >= 0.55  # 0.5572 +- 0.027
