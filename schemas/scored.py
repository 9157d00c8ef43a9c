"""The scored event (contract version 1): a feedback event plus comparable scores.

All normalised scores are on 0-100 where 100 is best, whatever the original scale.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.feedback import FeedbackEvent


class NpsCategory(StrEnum):
    promoter = "promoter"
    passive = "passive"
    detractor = "detractor"


class SentimentLabel(StrEnum):
    positive = "positive"
    neutral = "neutral"
    negative = "negative"


class TextAnalysis(BaseModel):
    model_config = ConfigDict(frozen=True)

    language: str = Field(description="ISO 639-1 code, detected or as sent; 'und' if unknown.")
    sentiment: float = Field(ge=-1, le=1, description="-1 very negative .. 1 very positive.")
    sentiment_label: SentimentLabel
    themes: list[str] = Field(default_factory=list, description="Theme ids from the taxonomy.")
    negative_themes: list[str] = Field(
        default_factory=list, description="Themes mentioned in a negative clause."
    )
    churn_intent: bool = Field(False, description="The comment states an intent to leave.")
    complaint: bool = Field(False, description="The comment is a complaint.")
    recommend_intent: bool = Field(False, description="States intent to recommend or buy again.")


class ScoredEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    event: FeedbackEvent = Field(description="The feedback event, with its event_id set.")
    scorer_version: str
    accepted_at: datetime = Field(description="When the pipeline accepted it (Kafka timestamp).")
    scored_at: datetime
    nps: int | None = Field(None, ge=0, le=10)
    nps_category: NpsCategory | None = None
    csat: float | None = Field(None, ge=0, le=100, description="CSAT on 0-100.")
    csat_top_box: bool | None = Field(None, description="CSAT in the top two boxes of its scale.")
    ces: float | None = Field(None, ge=0, le=100, description="Ease (CES) on 0-100, 100 = easiest.")
    rating: float | None = Field(None, ge=0, le=100, description="Mean of other ratings on 0-100.")
    sqi: float | None = Field(
        None, ge=0, le=100, description="Service-quality index: weighted mean of available scores."
    )
    text: TextAnalysis | None = None
    churn_intent: bool = Field(False, description="Loyalty signal from the comment.")
    complaint: bool = False
    recommend_intent: bool = False
    kafka_partition: int = -1
    kafka_offset: int = -1

    @property
    def event_id(self) -> str:
        assert self.event.event_id is not None
        return self.event.event_id
