"""Scores are comparable: every measure lands on 0-100 (100 best), whatever its scale."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.feedback import Metric, Response, Scale
from schemas.scored import NpsCategory
from services.scoring.scorers.measures import (
    SQI_WEIGHTS,
    Measures,
    is_top_box,
    measures,
    normalise,
    nps_category,
    service_quality_index,
)

bounds = st.tuples(st.integers(-10, 10), st.integers(1, 20)).map(lambda t: Scale(min=t[0], max=t[0] + t[1]))


@given(scale=bounds, fraction=st.floats(0, 1))
def test_normalised_scores_lie_on_0_to_100_and_keep_order(scale: Scale, fraction: float) -> None:
    value = scale.min + fraction * (scale.max - scale.min)
    score = normalise(value, scale)
    assert 0 <= score <= 100 + 1e-9
    assert normalise(scale.min, scale) == 0 and normalise(scale.max, scale) == 100


@given(scale=bounds, a=st.floats(0, 1), b=st.floats(0, 1))
def test_normalisation_is_monotone(scale: Scale, a: float, b: float) -> None:
    assume(a < b)
    span = scale.max - scale.min
    assert normalise(scale.min + a * span, scale) <= normalise(scale.min + b * span, scale)


@pytest.mark.parametrize(("answer", "category"), [(0, "detractor"), (6, "detractor"), (7, "passive"),
                                                  (8, "passive"), (9, "promoter"), (10, "promoter")])
def test_nps_categories_follow_the_standard_cut_offs(answer: int, category: str) -> None:
    assert nps_category(answer) is NpsCategory(category)


def test_csat_top_two_box_on_five_points() -> None:
    five = Scale(min=1, max=5)
    assert [is_top_box(v, five) for v in (1, 2, 3, 4, 5)] == [False, False, False, True, True]


def test_the_same_satisfaction_on_different_scales_gives_the_same_score() -> None:
    on_five = measures([Response(metric=Metric.csat, value=4, scale=Scale(min=1, max=5))])
    on_nine = measures([Response(metric=Metric.csat, value=7, scale=Scale(min=1, max=9))])
    assert on_five.csat == on_nine.csat == 75.0


def test_several_answers_to_one_metric_are_averaged() -> None:
    m = measures([Response(metric=Metric.rating, value=1, scale=Scale(min=1, max=3)),
                  Response(metric=Metric.rating, value=3, scale=Scale(min=1, max=3))])
    assert m.rating == 50.0


def test_sqi_with_one_measure_equals_that_measure() -> None:
    assert service_quality_index(Measures(csat=80.0), None) == pytest.approx(80.0)


def test_sqi_weights_are_documented_and_sum_to_one() -> None:
    assert sum(SQI_WEIGHTS.values()) == pytest.approx(1.0)


@given(nps=st.integers(0, 10), csat=st.floats(0, 100), sentiment=st.floats(-1, 1))
def test_sqi_is_a_weighted_mean_within_its_inputs(nps: int, csat: float, sentiment: float) -> None:
    sqi = service_quality_index(Measures(nps=nps, csat=csat), sentiment)
    parts = [nps * 10.0, csat, (sentiment + 1) * 50]
    assert sqi is not None and min(parts) - 1e-9 <= sqi <= max(parts) + 1e-9


def test_no_measures_no_sqi() -> None:
    assert service_quality_index(Measures(), None) is None
