"""Stratified k-fold cross-validation of the tuning procedure."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.text.crossval import K, cross_validate, spread, stratified_folds

GOLD = st.lists(st.sampled_from(["negative", "neutral", "positive"]), max_size=300)


@settings(max_examples=300, deadline=None)
@given(gold=GOLD, k=st.integers(2, 10), seed=st.integers(0, 2**32))
def test_folds_are_disjoint_covering_and_stratified(gold: list[str], k: int, seed: int) -> None:
    folds = stratified_folds(gold, k, seed)
    assert len(folds) == k
    assert sorted(i for f in folds for i in f) == list(range(len(gold)))  # disjoint + covering
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for cls, total in Counter(gold).items():
        per_fold = [sum(gold[i] == cls for i in f) for f in folds]
        assert set(per_fold) <= {total // k, -(-total // k)}, (cls, per_fold)


@given(gold=GOLD, seed=st.integers(0, 2**32))
def test_folds_depend_only_on_the_labels_and_the_seed(gold: list[str], seed: int) -> None:
    assert stratified_folds(gold, 5, seed) == stratified_folds(list(gold), 5, seed)


def test_folds_are_shuffled_within_a_class() -> None:
    gold = ["neutral"] * 100
    assert stratified_folds(gold, 5, 1) != stratified_folds(gold, 5, 2)
    assert stratified_folds(gold, 5, 1)[0] != list(range(0, 100, 5))


def test_spread_reports_mean_sample_sd_and_range() -> None:
    s = spread([0.7, 0.8, 0.9])
    assert s["mean"] == pytest.approx(0.8)
    assert s["sd"] == pytest.approx(statistics.stdev([0.7, 0.8, 0.9]), abs=1e-4)
    assert (s["min"], s["max"], s["folds"]) == (0.7, 0.9, [0.7, 0.8, 0.9])


def test_labels_that_follow_the_lexicon_are_predicted_on_every_held_out_fold() -> None:
    texts = ["great friendly crew"] * 20 + ["terrible, rude and late"] * 20 + ["flight to boston"] * 20
    gold = ["positive"] * 20 + ["negative"] * 20 + ["neutral"] * 20
    report = cross_validate(texts, gold, "en")
    assert report["k"] == K and len(report["held_out"]["accuracy"]["folds"]) == K
    assert report["held_out"]["accuracy"]["min"] == 1.0
    assert report["held_out"]["macro_f1"]["mean"] == 1.0
    assert report["in_sample_shipped"] == {"accuracy": 1.0, "macro_f1": 1.0}

