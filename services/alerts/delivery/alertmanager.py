"""Push to an existing Prometheus Alertmanager: POST {url}/api/v2/alerts.

Each alert becomes `{labels, annotations, startsAt, endsAt, generatorURL}`. Labels are the
alert's scope plus `alertname` (the rule), `severity`, `kind`, `fingerprint` and `ksp_receiver`
(route on it in Alertmanager); annotations carry the summary and the evidence. A resolved
alert is sent with `endsAt` (its end), which is how Alertmanager learns it resolved. Alertmanager
deduplicates by label set, so a repeated push is harmless; the idempotency key is still sent as
a header. One attempt per `send`; the outbox retries.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from schemas.alert import Alert, AlertStatus
from services.alerts.delivery.base import DeliveryError, alerts_of, http_failure

_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _label(name: str) -> str:
    name = _LABEL_NAME.sub("_", name)
    return name if name and not name[0].isdigit() else f"_{name}"


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def am_alert(alert: Alert, receiver: str, base_url: str | None) -> dict[str, Any]:
    labels = {_label(k): v for k, v in alert.labels.items() if v}
    labels.update({"alertname": alert.rule, "severity": alert.severity.value, "kind": alert.kind.value,
                   "fingerprint": alert.fingerprint, "ksp_receiver": receiver})
    ev = alert.evidence
    annotations = {"summary": alert.summary, "alert_id": alert.alert_id, "metric": ev.metric,
                   "detector_version": alert.detector_version}
    for key in ("observed", "baseline", "interval_low", "interval_high"):
        value = getattr(ev, key)
        if value is not None:
            annotations[key] = f"{value:g}"
    if ev.n:
        annotations["n"] = str(ev.n)
    if ev.example_event_ids:
        annotations["example_event_ids"] = ",".join(ev.example_event_ids)
    body: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": _iso(alert.starts_at)}
    if alert.status is AlertStatus.resolved:
        body["endsAt"] = _iso(alert.ends_at or datetime.now(UTC))
    elif alert.ends_at is not None:
        body["endsAt"] = _iso(alert.ends_at)
    if base_url:
        body["generatorURL"] = f"{base_url}/v1/alerts/{alert.alert_id}"
    return body


class AlertmanagerChannel:
    kind = "alertmanager"

    def __init__(self, client: httpx.AsyncClient, name: str, url: str, base_url: str | None = None) -> None:
        self.client = client
        self.name = name
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.base_url = base_url

    async def send(self, notification: Any) -> None:
        body = [am_alert(a, notification.receiver, self.base_url) for a in alerts_of(notification)]
        try:
            response = await self.client.post(self.url, json=body,
                                              headers={"idempotency-key": notification.idempotency_key})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.url}: {exc!r}") from exc
        if response.status_code >= 300:
            error = http_failure(response.status_code, response.text)
            raise DeliveryError(f"{self.url}: {error.reason}", retryable=error.retryable)
