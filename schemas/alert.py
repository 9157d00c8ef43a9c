"""The alert (contract version 1): what the alerts service raises, with its evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AlertKind(StrEnum):
    aggregate_drop = "aggregate_drop"
    theme_surge = "theme_surge"
    churn_risk = "churn_risk"


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class AlertEvidence(BaseModel):
    """Why the alert fired: enough for a sceptical reader to check it."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(description="What was measured, e.g. 'detractor_share' or 'churn_intent'.")
    observed: float | None = None
    baseline: float | None = None
    n: int = Field(0, ge=0, description="Responses in the observation window.")
    baseline_n: int = Field(0, ge=0)
    interval_low: float | None = Field(None, description="95% interval of the change, low end.")
    interval_high: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    example_event_ids: list[str] = Field(default_factory=list, max_length=20)
    details: dict[str, float | str] = Field(default_factory=dict)


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    alert_id: str
    fingerprint: str = Field(description="Stable identity of the condition (rule + scope).")
    kind: AlertKind
    rule: str
    detector_version: str
    severity: Severity
    status: AlertStatus
    labels: dict[str, str] = Field(description="Scope: touchpoint, unit, segment, customer_id, ...")
    summary: str
    evidence: AlertEvidence
    starts_at: datetime
    ends_at: datetime | None = None
