"""SLA breaches as notifications: a case still open when its SLA ran out goes to the receiver
the rules' ``routing.escalation`` names for it. Pure.

One notification per breach: the case's ``escalated`` event happens once (the case topic
remembers it across restarts), and the idempotency key depends on the case only, so a
notification sent again after a crash between the two carries the same key.
"""

from __future__ import annotations

import hashlib

from schemas.alert import AlertStatus
from schemas.cases import Case, CaseEvent
from services.alerts.notify import Notification, matches
from services.alerts.rules.models import Routing


def escalation_receiver(routing: Routing, case: Case) -> str | None:
    """The receiver of the first escalation entry matching the case's alert; None if none."""
    return next((e.receiver for e in routing.escalation if matches(e.match, case.alert.labels)), None)


def escalation_notification(routing: Routing, case: Case, event: CaseEvent) -> Notification | None:
    """The notification of `case`'s SLA breach (`event` is its `escalated` event)."""
    receiver = escalation_receiver(routing, case)
    if receiver is None:
        return None
    key = f"escalation/{case.case_id}"
    details = {"case_id": case.case_id, "case_state": case.state.value,
               "severity": case.alert.severity.value, "opened_at": case.opened_at.isoformat(),
               **{k: str(v) for k, v in event.details.items() if k in ("due_at", "overdue_s")}}
    if case.assignee:
        details["assignee"] = case.assignee
    return Notification(
        receiver=receiver, group_key=key, status=AlertStatus.firing, alerts=(case.alert,),
        idempotency_key=hashlib.sha256(f"{receiver}|{key}".encode()).hexdigest()[:32],
        group_labels={"escalation": "sla_breach", "case_id": case.case_id}, escalation=details)
