"""The quality aggregate (contract version 1): one row of `kundensprechen.quality_minute`
(and, with `hour`/`day` as period, of the hourly and daily rollups).

Counts and sums are additive, so aggregates of any set of minutes (or workers, or
partitions) combine by addition; means and intervals are derived from them at read time
(see services/common/statistics.py and the `quality_hourly`/`quality_daily` views).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class QualityAggregate(BaseModel):
    model_config = ConfigDict(frozen=True)

    minute: datetime = Field(description="Start of the minute (UTC) of occurred_at.")
    touchpoint: str
    unit: str
    segment: str
    internal: bool
    responses: int = Field(ge=0, description="Feedback events.")
    nps_n: int = Field(ge=0, description="Events with an NPS answer.")
    promoters: int = Field(ge=0)
    passives: int = Field(ge=0)
    detractors: int = Field(ge=0)
    csat_n: int = Field(ge=0)
    csat_sum: float = Field(description="Sum of CSAT on 0-100.")
    csat_sumsq: float = Field(description="Sum of squared CSAT, for the variance.")
    csat_top_box: int = Field(ge=0, description="CSAT answers in the top two boxes.")
    ces_n: int = Field(ge=0)
    ces_sum: float
    ces_sumsq: float
    sqi_n: int = Field(ge=0)
    sqi_sum: float
    sqi_sumsq: float
    sentiment_n: int = Field(ge=0)
    sentiment_sum: float = Field(description="Sum of sentiment on -1..1.")
    sentiment_sumsq: float
    negative_comments: int = Field(ge=0)
    churn_intent: int = Field(ge=0, description="Comments stating an intent to leave.")
    complaints: int = Field(ge=0)
    themes: dict[str, int] = Field(
        default_factory=dict, description="Mentions per theme (in ClickHouse: table theme_minute)."
    )
    negative_themes: dict[str, int] = Field(
        default_factory=dict, description="Mentions per theme in a negative clause."
    )
