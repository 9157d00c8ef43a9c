"""The `feedback_events` row of a scored event."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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


def dedup_token(topic: str, rows: Sequence[list[Any]]) -> str:
    """The insert deduplication token of exactly these rows, whichever batch they came in.

    It names the rows' positions in the topic and digests (partition, offset, event id) of each,
    so an insert of the same rows (a retry, or a replay that forms the same part) carries the
    same token and is stored once, while an insert of other rows never reuses one (which
    ClickHouse would silently drop). Readable prefix: the offset range per partition."""
    positions = sorted((row[-2], row[-1], row[0]) for row in rows)
    ranges: dict[int, tuple[int, int]] = {}
    for partition, offset, _ in positions:
        low, high = ranges.get(partition, (offset, offset))
        ranges[partition] = (min(low, offset), max(high, offset))
    digest = hashlib.blake2b("\n".join(f"{p}:{o}:{e}" for p, o, e in positions).encode(), digest_size=16)
    named = ",".join(f"{p}:{low}-{high}" for p, (low, high) in sorted(ranges.items()))
    return f"{topic}/{named}/{digest.hexdigest()}"


def position(row: list[Any]) -> tuple[int, int]:
    """(partition, offset) of a row: the order in which the sink bisects a batch."""
    return row[-2], row[-1]
