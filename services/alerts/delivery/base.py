"""What every channel shares: the channel protocol, its error, the notification as JSON."""

from __future__ import annotations

from typing import Any, Protocol

from schemas.alert import Alert


class DeliveryError(Exception):
    """One delivery attempt failed; `retryable=False` parks the delivery at once (e.g. HTTP 400)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Channel(Protocol):
    """One receiver. `send` makes a single attempt and raises DeliveryError on failure."""

    name: str
    kind: str

    async def send(self, notification: Any) -> None: ...


def alerts_of(notification: Any) -> list[Alert]:
    return list(notification.alerts)


def status_of(notification: Any) -> str:
    status = notification.status
    return str(getattr(status, "value", status))


def notification_payload(notification: Any) -> dict[str, Any]:
    """The notification as JSON (the webhook body): receiver, group, status, alerts, key, and
    `escalation` (case id, due_at, overdue_s, ...) for the SLA breach of a case."""
    alerts = alerts_of(notification)
    group_labels: dict[str, str] = dict(getattr(notification, "group_labels", None) or {})
    if not group_labels and alerts:
        common = dict(alerts[0].labels)
        for alert in alerts[1:]:
            common = {k: v for k, v in common.items() if alert.labels.get(k) == v}
        group_labels = common
    payload: dict[str, Any] = {
        "version": 1,
        "receiver": notification.receiver,
        "group_key": notification.group_key,
        "status": status_of(notification),
        "group_labels": group_labels,
        "idempotency_key": notification.idempotency_key,
        "alerts": [a.model_dump(mode="json") for a in alerts],
    }
    escalation = getattr(notification, "escalation", None)
    if escalation:  # an SLA breach of a case (notify.escalation), not an alert state change
        payload["escalation"] = dict(escalation)
    return payload


def http_failure(status_code: int, text: str) -> DeliveryError:
    """4xx other than 408/429 will not get better by retrying; everything else may."""
    retryable = status_code >= 500 or status_code in (408, 425, 429)
    return DeliveryError(f"HTTP {status_code}: {text[:200]}", retryable=retryable)
