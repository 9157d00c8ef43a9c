"""Score one feedback event: measures, text analysis, service-quality index, loyalty signals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemas.feedback import FeedbackEvent
from schemas.scored import NpsCategory, ScoredEvent, TextAnalysis
from services.scoring.scorers.measures import measures, service_quality_index
from services.scoring.text import TEXT_ANALYSER_VERSION

SCORER_VERSION = "score-1.0.0"
SCORER_VERSION_WITH_TEXT = f"{SCORER_VERSION}+{TEXT_ANALYSER_VERSION}"

TextAnalyser = Callable[[str, str | None], TextAnalysis]


def score_event(
    event: FeedbackEvent,
    *,
    accepted_at: datetime,
    scored_at: datetime,
    analyse_text: TextAnalyser,
    partition: int = -1,
    offset: int = -1,
) -> ScoredEvent:
    """Pure: the same event and analyser always give the same scores."""
    event = event.with_event_id()
    m = measures(event.responses)
    text = analyse_text(event.comment.text, event.comment.language) if event.comment else None
    sentiment = text.sentiment if text else None
    return ScoredEvent(
        event=event,
        scorer_version=SCORER_VERSION if text is None else SCORER_VERSION_WITH_TEXT,
        accepted_at=accepted_at,
        scored_at=scored_at,
        nps=m.nps,
        nps_category=m.nps_category,
        csat=m.csat,
        csat_top_box=m.csat_top_box,
        ces=m.ces,
        rating=m.rating,
        sqi=service_quality_index(m, sentiment),
        text=text,
        churn_intent=bool(text and text.churn_intent),
        complaint=bool(text and text.complaint),
        recommend_intent=bool(text and text.recommend_intent) or m.nps_category is NpsCategory.promoter,
        kafka_partition=partition,
        kafka_offset=offset,
    )
