"""Scored events -> alerts. Pure: state is explicit, time is passed in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from schemas.alert import Alert, AlertEvidence, AlertKind, AlertStatus, Severity
from schemas.scored import NpsCategory, ScoredEvent

CHURN_RULE = "churn-risk-detractor-with-intent"
FLOW_VERSION = "alerts-flow-1.0.0"


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    canonical = rule + "|" + "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class AlertState:
    """Alerts currently firing, by fingerprint: a condition alerts once until it resolves."""

    firing: dict[str, Alert] = field(default_factory=dict)


def churn_risk(scored: ScoredEvent, now: datetime) -> Alert | None:
    """A detractor whose comment states an intent to leave: a case for a human to follow up."""
    if not (scored.churn_intent and scored.nps_category is NpsCategory.detractor):
        return None
    event = scored.event
    labels = {"touchpoint": event.touchpoint.value, "unit": event.unit, "segment": event.segment,
              "customer_id": event.customer_id or f"event:{scored.event_id}"}
    fp = fingerprint(CHURN_RULE, {"customer_id": labels["customer_id"]})
    return Alert(
        alert_id=f"{fp}-{int(event.occurred_at.timestamp())}",
        fingerprint=fp,
        kind=AlertKind.churn_risk,
        rule=CHURN_RULE,
        detector_version=FLOW_VERSION,
        severity=Severity.critical,
        status=AlertStatus.firing,
        labels=labels,
        summary=f"Customer {labels['customer_id']} at {event.touchpoint.value}/{event.unit} "
        f"scored NPS {scored.nps} and signals intent to leave",
        evidence=AlertEvidence(metric="churn_intent", observed=float(scored.nps or 0), n=1,
                               window_start=event.occurred_at, window_end=event.occurred_at,
                               example_event_ids=[scored.event_id]),
        starts_at=now,
    )


def evaluate(state: AlertState, scored: ScoredEvent, now: datetime) -> list[Alert]:
    """New alerts for this event, deduplicated against those already firing."""
    alert = churn_risk(scored, now)
    if alert is None or alert.fingerprint in state.firing:
        return []
    state.firing[alert.fingerprint] = alert
    return [alert]
