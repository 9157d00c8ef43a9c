"""The `feedback_events` row of a scored event."""

from __future__ import annotations

from typing import Any

from schemas.scored import ScoredEvent
from schemas.tables import FEEDBACK_EVENTS_COLUMNS

COLUMNS = FEEDBACK_EVENTS_COLUMNS


def to_row(scored: ScoredEvent, partition: int, offset: int) -> list[Any]:
    event, text = scored.event, scored.text
    scales = [r.effective_scale for r in event.responses]
    return [
        scored.event_id, event.occurred_at, scored.accepted_at, scored.scored_at,
        event.touchpoint.value, event.source, event.unit, event.segment, event.customer_id or "",
        event.internal, scored.nps, scored.nps_category.value if scored.nps_category else "",
        scored.csat, scored.csat_top_box, scored.ces, scored.rating, scored.sqi,
        [r.metric.value for r in event.responses], [r.value for r in event.responses],
        [s.min for s in scales], [s.max for s in scales],
        event.comment.text if event.comment else "",
        text.language if text else "", text.sentiment if text else None,
        text.sentiment_label.value if text else "", text.themes if text else [],
        text.negative_themes if text else [], scored.churn_intent, scored.complaint,
        scored.recommend_intent, scored.scorer_version, partition, offset,
    ]
