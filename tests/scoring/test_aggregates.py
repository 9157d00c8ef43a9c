"""Minute aggregates: additive partials that sum to the aggregate of all events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.feedback import Comment, FeedbackEvent, Metric, Response, Touchpoint
from schemas.scored import ScoredEvent, SentimentLabel, TextAnalysis
from services.scoring.aggregates import fold
from services.scoring.scorers.event import score_event

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def analyser(text: str, language: str | None) -> TextAnalysis:
    negative = "bad" in text
    return TextAnalysis(language="en", sentiment=-0.5 if negative else 0.5,
                        sentiment_label=SentimentLabel.negative if negative else SentimentLabel.positive,
                        themes=["wait_time"], negative_themes=["wait_time"] if negative else [],
                        churn_intent="cancel" in text)


def scored(nps: int, seconds: int, text: str | None = None, unit: str = "u1") -> ScoredEvent:
    event = FeedbackEvent(occurred_at=T0 + timedelta(seconds=seconds), touchpoint=Touchpoint.store, source="s",
                          unit=unit, responses=[Response(metric=Metric.nps, value=nps),
                                                Response(metric=Metric.csat, value=4)],
                          comment=Comment(text=text) if text else None)
    return score_event(event, accepted_at=T0, scored_at=T0, analyse_text=analyser)


def test_events_are_counted_per_scope_and_minute() -> None:
    aggregates = fold([scored(10, 5), scored(3, 50, "bad, I cancel"), scored(8, 65), scored(9, 5, unit="u2")])
    by_key = {(a.unit, a.minute): a for a in aggregates}
    first = by_key[("u1", T0)]
    assert (first.responses, first.promoters, first.detractors, first.passives) == (2, 1, 1, 0)
    assert first.churn_intent == 1 and first.negative_comments == 1
    assert first.themes == {"wait_time": 1} and first.negative_themes == {"wait_time": 1}
    assert first.csat_n == 2 and first.csat_sum == 150.0 and first.csat_top_box == 2
    assert by_key[("u1", T0 + timedelta(minutes=1))].passives == 1
    assert by_key[("u2", T0)].promoters == 1


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 180), st.booleans()), min_size=1, max_size=40),
       st.integers(1, 39))
def test_partials_of_any_split_add_up_to_the_whole(spec: list[tuple[int, int, bool]], cut: int) -> None:
    events = [scored(nps, sec, "bad" if bad else "good") for nps, sec, bad in spec]
    whole = {(a.minute, a.unit): a for a in fold(events)}
    parts = fold(events[:cut]) + fold(events[cut:])
    for key, aggregate in whole.items():
        matching = [p for p in parts if (p.minute, p.unit) == key]
        assert sum(p.responses for p in matching) == aggregate.responses
        assert sum(p.detractors for p in matching) == aggregate.detractors
        assert abs(sum(p.sentiment_sum for p in matching) - aggregate.sentiment_sum) < 1e-9
