"""Alerts out of detector decisions: identity, labels, evidence and the summary a person reads.

Identity: ``fingerprint`` = hash of the rule name and the scope's identity labels (drop: the
scope labels; surge: the scope labels and the theme; churn: the customer id), so it is stable
across restarts and reloads; ``alert_id`` = fingerprint + start time (ms), so a condition that
fires again after resolving is a new alert. Pure functions.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any

from schemas.alert import Alert, AlertEvidence, AlertKind, AlertStatus, Severity
from schemas.scored import ScoredEvent
from services.alerts.detectors import churn
from services.alerts.detectors.decision import Decision
from services.alerts.rules.models import SCOPE_LABELS, ChurnRule, DropRule, SurgeRule

#: Metrics that are shares: shown in percent (points for a change).
_SHARES = ("detractor_share", "top_box", "csat_top_box", "theme_share_of_negative")


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable identity of a condition: the rule and its identity labels (order-independent)."""
    canonical = rule + "|" + "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def alert_id(fp: str, starts_at: datetime) -> str:
    return f"{fp}-{int(starts_at.timestamp() * 1000)}"


def resolved(alert: Alert, now: datetime, reason: str, **details: float | str) -> Alert:
    """The alert once more, ``resolved`` at `now`, with why in its evidence."""
    evidence = alert.evidence.model_copy(
        update={"details": {**alert.evidence.details, "resolved_reason": reason, **details}}
    )
    return alert.model_copy(update={
        "status": AlertStatus.resolved,
        "ends_at": max(now, alert.starts_at),
        "evidence": evidence,
    })


def _scope_text(labels: dict[str, str]) -> str:
    return "/".join(labels[k] for k in SCOPE_LABELS if k in labels) or "all feedback"


def _fmt(metric: str, x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if metric in _SHARES:
        return f"{100 * x:.1f}%"
    if metric == "sentiment" or metric == "mean" and abs(x) <= 1:
        return f"{x:+.2f}"
    return f"{x:.1f}"


def _fmt_change(metric: str, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return ""
    if metric in _SHARES:
        return f"; 95% interval of the change {100 * lo:+.1f}..{100 * hi:+.1f} pp"
    return f"; 95% interval of the change {lo:+.2f}..{hi:+.2f}"


def _scope_fields(d: Decision, scope: dict[str, str]) -> dict[str, Any]:
    fields = d.evidence_fields()
    fields["details"] = {**fields["details"], "detector_rule": d.rule,
                         "scope": ",".join(f"{k}={v}" for k, v in scope.items())}
    return fields


def _firing(fp: str, kind: AlertKind, rule: str, d: Decision, sev: Severity, labels: dict[str, str],
            summary: str, fields: dict[str, Any], now: datetime) -> Alert:
    return Alert(alert_id=alert_id(fp, now), fingerprint=fp, kind=kind, rule=rule,
                 detector_version=d.detector_version, severity=sev, status=AlertStatus.firing,
                 labels=labels, summary=summary, evidence=AlertEvidence(**fields), starts_at=now)


def drop_alert(rule: DropRule, scope: dict[str, str], sev: Severity, d: Decision,
               now: datetime) -> Alert:
    labels = {**scope, "rule": rule.name, "kind": AlertKind.aggregate_drop.value,
              "severity": sev.value, "metric": rule.metric}
    fields = _scope_fields(d, scope)
    fields["metric"] = rule.metric
    summary = (
        f"{rule.metric} at {_scope_text(scope)} dropped: {_fmt(d.metric, d.observed)} "
        f"vs baseline {_fmt(d.metric, d.baseline)} (n={d.n}, baseline n={d.baseline_n}"
        f"{_fmt_change(d.metric, d.interval_low, d.interval_high)})"
    )
    fp = fingerprint(rule.name, scope)
    return _firing(fp, AlertKind.aggregate_drop, rule.name, d, sev, labels, summary, fields, now)


def surge_alert(rule: SurgeRule, scope: dict[str, str], sev: Severity, theme: str, d: Decision,
                now: datetime) -> Alert:
    ident = {**scope, "theme": theme}
    labels = {**ident, "rule": rule.name, "kind": AlertKind.theme_surge.value, "severity": sev.value}
    summary = (
        f"theme '{theme}' surging at {_scope_text(scope)}: {_fmt(d.metric, d.observed)} of "
        f"negative comments vs {_fmt(d.metric, d.baseline)} normally (n={d.n}, baseline n="
        f"{d.baseline_n}{_fmt_change(d.metric, d.interval_low, d.interval_high)})"
    )
    fp = fingerprint(rule.name, ident)
    fields = _scope_fields(d, scope)
    return _firing(fp, AlertKind.theme_surge, rule.name, d, sev, labels, summary, fields, now)


def churn_alert(rule: ChurnRule, labels: dict[str, str], sev: Severity, decisions: list[Decision],
                scored: ScoredEvent, now: datetime) -> Alert:
    """One alert for the signals that fired together (intent, repeated negatives)."""
    d = decisions[0]
    cid = labels["customer_id"]
    signals = ",".join("intent" if x.rule == churn.RULE_INTENT else "repeated" for x in decisions)
    alert_labels = {k: v for k, v in labels.items() if k != "source"}
    alert_labels.update({"rule": rule.name, "kind": AlertKind.churn_risk.value,
                         "severity": sev.value, "signal": signals})
    ev = scored.event
    summary = (f"customer {cid} at {ev.touchpoint.value}/{ev.unit} at risk of churning: "
               f"{_churn_why(d, scored)}")
    fp = fingerprint(rule.name, {"customer_id": cid})
    fields = _churn_fields(decisions, signals, scored)
    return _firing(fp, AlertKind.churn_risk, rule.name, d, sev, alert_labels, summary, fields, now)


def _churn_fields(decisions: list[Decision], signals: str, scored: ScoredEvent) -> dict[str, Any]:
    d = decisions[0]
    fields = d.evidence_fields()
    ids = list(fields["example_event_ids"])
    for x in decisions[1:]:
        ids += [e for e in x.example_event_ids if e not in ids]
    fields["example_event_ids"] = ids[:20]
    fields["details"] = {**fields["details"], "detector_rule": d.rule, "signals": signals}
    if scored.nps is not None:
        fields["details"]["nps"] = float(scored.nps)
    return fields


def _churn_why(d: Decision, scored: ScoredEvent) -> str:
    if d.rule == churn.RULE_INTENT:
        nps = scored.nps if scored.nps is not None else "n/a"
        return f"scored NPS {nps} and states an intent to leave"
    return (f"had {d.n} negative experiences across {d.details.get('touchpoints', '')} "
            f"within {d.details.get('window_days', 0):g} days")
