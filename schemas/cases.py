"""Alert cases (contract version 1): what operations teams follow up, event-sourced.

An alert that fires opens a case. Its lifecycle is a sequence of case events on the Kafka
topic `ksp.alerts.cases` (and in ClickHouse `kundensprechen.alert_events`); the current case
is the fold of its events. States: firing -> acknowledged -> assigned -> resolved (a case can
also be resolved straight from firing, and the alert condition itself may clear).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import Alert


class CaseState(StrEnum):
    firing = "firing"
    acknowledged = "acknowledged"
    assigned = "assigned"
    resolved = "resolved"


class CaseAction(StrEnum):
    opened = "opened"              # the alert fired
    acknowledged = "acknowledged"
    assigned = "assigned"
    commented = "commented"
    resolved = "resolved"          # by a person, with an outcome
    condition_cleared = "condition_cleared"  # the detector reports the condition is gone
    escalated = "escalated"        # an SLA timer ran out
    silenced = "silenced"
    recovered = "recovered"        # closed loop: the followed-up customer scored again


class Outcome(StrEnum):
    contacted_recovered = "contacted_recovered"
    contacted_not_recovered = "contacted_not_recovered"
    not_reachable = "not_reachable"
    fixed_root_cause = "fixed_root_cause"
    false_alarm = "false_alarm"
    other = "other"


class CaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    case_id: str = Field(description="The alert id that opened the case.")
    sequence: int = Field(ge=0, description="Position in the case's history, from 0.")
    action: CaseAction
    at: datetime
    by: str = Field("system", description="Who acted: a user name or 'system'.")
    assignee: str | None = None
    outcome: Outcome | None = None
    note: str | None = Field(None, max_length=4000)
    alert: Alert | None = Field(None, description="The alert, on 'opened'.")
    details: dict[str, float | str] = Field(default_factory=dict)


class Case(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    alert: Alert
    state: CaseState
    assignee: str | None = None
    outcome: Outcome | None = None
    opened_at: datetime
    updated_at: datetime
    due_at: datetime | None = Field(None, description="SLA: act before this time.")
    escalated: bool = False
    condition_cleared: bool = False
    recovered: bool | None = Field(None, description="Closed loop: did the customer's score recover?")
    history: list[CaseEvent] = Field(default_factory=list)


class Silence(BaseModel):
    """Alertmanager-style: alerts whose labels match all matchers are not notified."""

    model_config = ConfigDict(frozen=True)

    silence_id: str
    matchers: dict[str, str] = Field(description="Label name -> exact value (all must match).")
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str = ""


class CaseCommand(BaseModel):
    """Body of the lifecycle endpoints (acknowledge, assign, resolve, comment)."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=100)
    assignee: str | None = Field(None, max_length=100)
    outcome: Outcome | None = None
    note: str | None = Field(None, max_length=4000)
