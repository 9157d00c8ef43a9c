"""Minute aggregates per touchpoint x unit x segment, folded from scored events (pure).

The agent folds each batch and publishes the partial aggregates: counts and sums are
additive, so consumers (and ClickHouse's materialized views, which build the same numbers
from the stored rows) combine partials from any number of batches and workers by addition.
Delivery is at-least-once: a batch replayed after a crash or rebalance publishes its partials
again. Windowed tables (Faust tumbling windows) would not be exact either without
exactly-once transactions (which need the idempotent producer Tansu lacks), and would need a
repartition by scope (the raw topic is keyed by event id) plus a changelog topic; the exact
numbers are ClickHouse's, built from rows stored once per event id.

Per-customer history is not kept here: raw events are keyed by event id, so a customer's
events are spread over every scoring worker. The alerts service re-keys scored events by
customer and keeps that history (services/alerts/detectors/churn.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.aggregate import QualityAggregate
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel

AggregateKey = tuple[datetime, str, str, str, bool]


@dataclass
class _Sums:
    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.n += 1
            self.total += value
            self.squares += value * value


@dataclass
class _Partial:
    responses: int = 0
    nps: Counter[str] = field(default_factory=Counter)
    csat: _Sums = field(default_factory=_Sums)
    csat_top_box: int = 0
    ces: _Sums = field(default_factory=_Sums)
    sqi: _Sums = field(default_factory=_Sums)
    sentiment: _Sums = field(default_factory=_Sums)
    negative_comments: int = 0
    churn_intent: int = 0
    complaints: int = 0
    themes: Counter[str] = field(default_factory=Counter)
    negative_themes: Counter[str] = field(default_factory=Counter)

    def add(self, s: ScoredEvent) -> None:
        self.responses += 1
        if s.nps_category is not None:
            self.nps[s.nps_category.value] += 1
        self.csat.add(s.csat)
        self.csat_top_box += bool(s.csat_top_box)
        self.ces.add(s.ces)
        self.sqi.add(s.sqi)
        self.churn_intent += s.churn_intent
        self.complaints += s.complaint
        if s.text is not None:
            self.sentiment.add(s.text.sentiment)
            self.negative_comments += s.text.sentiment_label is SentimentLabel.negative
            self.themes.update(s.text.themes)
            self.negative_themes.update(s.text.negative_themes)


def key_of(scored: ScoredEvent) -> AggregateKey:
    event = scored.event
    minute = event.occurred_at.astimezone(UTC).replace(second=0, microsecond=0)
    return (minute, event.touchpoint.value, event.unit, event.segment, event.internal)


def fold(events: Iterable[ScoredEvent]) -> list[QualityAggregate]:
    partials: dict[AggregateKey, _Partial] = {}
    for scored in events:
        partials.setdefault(key_of(scored), _Partial()).add(scored)
    return [_aggregate(key, partial) for key, partial in partials.items()]


def _aggregate(key: AggregateKey, p: _Partial) -> QualityAggregate:
    minute, touchpoint, unit, segment, internal = key
    return QualityAggregate(
        minute=minute, touchpoint=touchpoint, unit=unit, segment=segment, internal=internal,
        responses=p.responses, nps_n=sum(p.nps.values()),
        promoters=p.nps[NpsCategory.promoter.value], passives=p.nps[NpsCategory.passive.value],
        detractors=p.nps[NpsCategory.detractor.value],
        csat_n=p.csat.n, csat_sum=p.csat.total, csat_sumsq=p.csat.squares, csat_top_box=p.csat_top_box,
        ces_n=p.ces.n, ces_sum=p.ces.total, ces_sumsq=p.ces.squares,
        sqi_n=p.sqi.n, sqi_sum=p.sqi.total, sqi_sumsq=p.sqi.squares,
        sentiment_n=p.sentiment.n, sentiment_sum=p.sentiment.total, sentiment_sumsq=p.sentiment.squares,
        negative_comments=p.negative_comments, churn_intent=p.churn_intent, complaints=p.complaints,
        themes=dict(p.themes), negative_themes=dict(p.negative_themes),
    )


def aggregate_key_bytes(aggregate: QualityAggregate) -> bytes:
    """Kafka key: the scope, so one scope's partials share a partition."""
    return f"{aggregate.touchpoint}|{aggregate.unit}|{aggregate.segment}|{int(aggregate.internal)}".encode()
