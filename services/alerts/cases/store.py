"""The cases in memory: the fold of every case event seen (rebuilt from the cases topic).

The store decides which events follow from what happens (an alert changes, a timer runs out,
a followed-up customer gives feedback again) but applies nothing by itself: the caller
publishes each event and applies it with `apply`, so memory, the topic and ClickHouse see the
same events in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.alert import Alert, AlertKind, AlertStatus
from schemas.cases import Case, CaseAction, CaseEvent, CaseState, Silence
from schemas.scored import ScoredEvent
from services.alerts.cases.model import OPEN_STATES, CaseNotFound, InvalidTransition, apply
from services.common.statistics import wilson_interval


@dataclass(frozen=True)
class CaseFilter:
    state: str | None = None
    severity: str | None = None
    kind: str | None = None
    assignee: str | None = None
    touchpoint: str | None = None
    unit: str | None = None
    customer_id: str | None = None
    rule: str | None = None

    def matches(self, case: Case) -> bool:
        labels = case.alert.labels
        return all((
            self.state is None or case.state.value == self.state,
            self.severity is None or case.alert.severity.value == self.severity,
            self.kind is None or case.alert.kind.value == self.kind,
            self.assignee is None or case.assignee == self.assignee,
            self.touchpoint is None or labels.get("touchpoint") == self.touchpoint,
            self.unit is None or labels.get("unit") == self.unit,
            self.customer_id is None or labels.get("customer_id") == self.customer_id,
            self.rule is None or case.alert.rule == self.rule,
        ))


def silence_matches(silence: Silence, labels: dict[str, str], now: datetime) -> bool:
    return silence.starts_at <= now < silence.ends_at and all(
        labels.get(k) == v for k, v in silence.matchers.items())


class CaseStore:
    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self._by_fingerprint: dict[str, str] = {}  # fingerprint -> latest case id
        self._churn_by_customer: dict[str, list[str]] = {}

    # -- reading ---------------------------------------------------------------------------
    def get(self, case_id: str) -> Case:
        try:
            return self.cases[case_id]
        except KeyError:
            raise CaseNotFound(f"no case {case_id!r}", case_id) from None

    def query(self, where: CaseFilter | None = None, limit: int = 500) -> list[Case]:
        where = where or CaseFilter()
        found = [c for c in self.cases.values() if where.matches(c)]
        found.sort(key=lambda c: c.updated_at, reverse=True)
        return found[:limit]

    def latest_for(self, fingerprint: str) -> Case | None:
        case_id = self._by_fingerprint.get(fingerprint)
        return self.cases.get(case_id) if case_id else None

    # -- writing ---------------------------------------------------------------------------
    def apply(self, event: CaseEvent) -> Case | None:
        """Apply one event. A repeat of an event already applied (same case and sequence, as
        at-least-once delivery on the topic can produce) is skipped and returns None."""
        case = self.cases.get(event.case_id)
        if case is not None and event.sequence < len(case.history):
            return None
        case = apply(case, event)
        self.cases[case.case_id] = case
        self._point_fingerprint(case)
        if len(case.history) == 1:
            self._index_churn(case)
        return case

    def adopt(self, case: Case) -> Case | None:
        """Take a case as the cases table holds it (written here or by another worker). The
        table's order is the truth: a version at least as long as the one known replaces it (two
        workers that changed a case at once end with the same, later one); an older one (the echo
        of our own earlier write) is skipped and returns None."""
        known = self.cases.get(case.case_id)
        if known is not None and (len(case.history) < len(known.history) or case == known):
            return None
        self.cases[case.case_id] = case
        self._point_fingerprint(case)
        if known is None:
            self._index_churn(case)
        return case

    def _index_churn(self, case: Case) -> None:
        customer = case.alert.labels.get("customer_id")
        if case.alert.kind is AlertKind.churn_risk and customer:
            self._churn_by_customer.setdefault(customer, []).append(case.case_id)

    def _point_fingerprint(self, case: Case) -> None:
        """The fingerprint's latest case is the one opened last, not the one changed last (a
        comment on an old case must not make it the case a new resolution is matched to)."""
        latest = self.cases.get(self._by_fingerprint.get(case.alert.fingerprint, ""))
        if latest is None or latest.opened_at <= case.opened_at:
            self._by_fingerprint[case.alert.fingerprint] = case.case_id

    def rebuild(self, events: Iterable[CaseEvent]) -> int:
        """Apply replayed events (in topic order); events that do not fit are skipped."""
        applied = 0
        for event in events:
            try:
                if self.apply(event) is not None:
                    applied += 1
            except InvalidTransition:
                continue
        return applied

    @staticmethod
    def next_event(case: Case, action: CaseAction, at: datetime, **fields: Any) -> CaseEvent:
        return CaseEvent(case_id=case.case_id, sequence=len(case.history), action=action, at=at, **fields)

    # -- what follows from what happens -----------------------------------------------------
    def on_alert(self, alert: Alert, now: datetime, sla_s: Callable[[Any], float],
                 evidence: dict[str, float | str] | None = None,
                 silences: Iterable[Silence] = ()) -> list[CaseEvent]:
        """Events an alert state change implies: a firing alert opens its case (once); a
        resolved alert clears the condition of its case (found by alert id, else by fingerprint)."""
        if alert.status is AlertStatus.firing:
            if alert.alert_id in self.cases:
                return []
            details: dict[str, float | str] = dict(evidence or {})
            details["due_at"] = (now + timedelta(seconds=sla_s(alert.severity))).isoformat()
            opened = CaseEvent(case_id=alert.alert_id, sequence=0, action=CaseAction.opened, at=now,
                               alert=alert, details=details)
            events = [opened]
            matching = [s for s in silences if silence_matches(s, alert.labels, now)]
            if matching:
                events.append(CaseEvent(case_id=alert.alert_id, sequence=1, action=CaseAction.silenced,
                                        at=now, note=matching[0].comment or None,
                                        details={"silence_id": matching[0].silence_id}))
            return events
        case = self.cases.get(alert.alert_id) or self.latest_for(alert.fingerprint)
        if case is None or case.condition_cleared:
            return []
        return [self.next_event(case, CaseAction.condition_cleared, now, alert=alert)]

    @staticmethod
    def owned(case: Case, owner: str | None) -> bool:
        """Whether worker `owner` emits system events (escalation, recovery) for `case`: the
        worker that opened it (recorded in the opened event), so two workers never race."""
        opener = case.history[0].details.get("worker_id") if case.history else None
        return owner is None or opener is None or opener == owner

    def overdue(self, now: datetime, owner: str | None = None) -> list[CaseEvent]:
        """`escalated` for every open case past its due time, once."""
        return [self.next_event(c, CaseAction.escalated, now,
                                details={"due_at": c.due_at.isoformat(),
                                         "overdue_s": round((now - c.due_at).total_seconds(), 3)})
                for c in self.cases.values()
                if c.state in OPEN_STATES and not c.escalated and c.due_at is not None and now >= c.due_at
                and self.owned(c, owner)]

    def on_feedback(self, scored: ScoredEvent, now: datetime, owner: str | None = None) -> list[CaseEvent]:
        """Closed loop: the first feedback of a customer after their churn case opened records
        `recovered` true (NPS >= 9, or the score improved against the case's evidence) or false."""
        customer = scored.event.customer_id
        if not customer:
            return []
        events = []
        for case_id in self._churn_by_customer.get(customer, ()):
            case = self.cases[case_id]
            if case.recovered is not None or scored.event_id in case.alert.evidence.example_event_ids:
                continue
            if not self.owned(case, owner):
                continue
            if scored.accepted_at < case.opened_at:
                continue  # older than the case: part of what raised it, not a follow-up
            recovered, why = recovery_verdict(case, scored)
            events.append(self.next_event(case, CaseAction.recovered, now, details={
                "recovered": 1.0 if recovered else 0.0, "reason": why, "event_id": scored.event_id,
                **({"nps": float(scored.nps)} if scored.nps is not None else {}),
                **({"sqi": float(scored.sqi)} if scored.sqi is not None else {}),
            }))
        return events

    def recovery(self, unit: str | None = None, touchpoint: str | None = None) -> dict[str, Any]:
        """Recovery rate of churn cases whose customer gave feedback again (95% Wilson interval)."""
        churn = [c for c in self.cases.values() if c.alert.kind is AlertKind.churn_risk
                 and (unit is None or c.alert.labels.get("unit") == unit)
                 and (touchpoint is None or c.alert.labels.get("touchpoint") == touchpoint)]
        followed = [c for c in churn if c.recovered is not None]
        recovered = sum(1 for c in followed if c.recovered)
        result: dict[str, Any] = {
            "churn_cases": len(churn), "followed_up": len(followed), "recovered": recovered,
            "not_recovered": len(followed) - recovered,
            "awaiting_feedback": len(churn) - len(followed),
            "rate": None, "rate_low": None, "rate_high": None,
            "by_outcome": {},
        }
        if followed:
            interval = wilson_interval(recovered, len(followed))
            result.update(rate=recovered / len(followed), rate_low=interval.low, rate_high=interval.high)
        by_outcome: dict[str, dict[str, int]] = {}
        for c in followed:
            key = c.outcome.value if c.outcome else "open"
            slot = by_outcome.setdefault(key, {"followed_up": 0, "recovered": 0})
            slot["followed_up"] += 1
            slot["recovered"] += int(bool(c.recovered))
        result["by_outcome"] = by_outcome
        return result

    def evict_closed(self, before: datetime) -> list[str]:
        """Forget cases that are over: resolved, their condition cleared, and unchanged since
        before `before`. They stay on the cases topic and in ClickHouse (`alert_events`); memory
        and the API keep the open ones and the recent past. Returns the ids forgotten."""
        over = [c.case_id for c in self.cases.values()
                if c.state is CaseState.resolved and c.condition_cleared and c.updated_at < before]
        for case_id in over:
            self.forget(case_id)
        return over

    def forget(self, case_id: str) -> bool:
        """Drop a case from memory and its indexes (evicted here, or by another worker)."""
        case = self.cases.pop(case_id, None)
        if case is None:
            return False
        if self._by_fingerprint.get(case.alert.fingerprint) == case_id:
            del self._by_fingerprint[case.alert.fingerprint]
        customer = case.alert.labels.get("customer_id", "")
        ids = self._churn_by_customer.get(customer)
        if ids and case_id in ids:
            ids.remove(case_id)
            if not ids:
                del self._churn_by_customer[customer]
        return True

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in CaseState}
        for c in self.cases.values():
            out[c.state.value] += 1
        return out


def recovery_verdict(case: Case, scored: ScoredEvent) -> tuple[bool, str]:
    opened = case.history[0].details if case.history else {}
    if scored.nps is not None and scored.nps >= 9:
        return True, "nps>=9"
    before_nps = opened.get("evidence_nps")
    if scored.nps is not None and isinstance(before_nps, float | int):
        return scored.nps > before_nps, "nps improved" if scored.nps > before_nps else "nps not improved"
    before_sqi = opened.get("evidence_sqi")
    if scored.sqi is not None and isinstance(before_sqi, float | int):
        return scored.sqi > before_sqi, "sqi improved" if scored.sqi > before_sqi else "sqi not improved"
    return False, "no comparable score"
