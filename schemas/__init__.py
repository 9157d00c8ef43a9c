"""Kundensprechen's contracts: the events that cross service boundaries, versioned.

Every message on a Kafka topic and every row shape in ClickHouse is described here,
so that touchpoints, services, analysts and tests agree on one definition.
"""

from schemas.aggregate import QualityAggregate
from schemas.alert import Alert, AlertEvidence, AlertKind, AlertStatus, Severity
from schemas.feedback import (
    Comment,
    FeedbackEvent,
    Metric,
    Response,
    Scale,
    Touchpoint,
    derive_event_id,
)
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel
from schemas.topics import Topics

__all__ = [
    "Alert",
    "AlertEvidence",
    "AlertKind",
    "AlertStatus",
    "Comment",
    "FeedbackEvent",
    "Metric",
    "NpsCategory",
    "QualityAggregate",
    "Response",
    "Scale",
    "ScoredEvent",
    "SentimentLabel",
    "Severity",
    "Topics",
    "Touchpoint",
    "derive_event_id",
]
