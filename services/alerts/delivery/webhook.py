"""Generic webhook: the notification as JSON, HMAC-SHA256 signature, idempotency key.

Body: `{"version": 1, "receiver", "group_key", "status", "group_labels", "idempotency_key",
"alerts": [Alert, ...]}`. Headers: `Idempotency-Key` (same on every attempt and on a replay,
so a receiver can drop repeats) and, with a secret, `X-KSP-Signature: sha256=<hex HMAC of the
body>`. One attempt per `send`; the outbox retries.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson

from services.alerts.delivery.base import DeliveryError, http_failure, notification_payload


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    kind = "webhook"

    def __init__(self, client: httpx.AsyncClient, name: str, url: str, secret: bytes = b"") -> None:
        self.client = client
        self.name = name
        self.url = url
        self.secret = secret

    def render(self, notification: Any) -> bytes:
        return orjson.dumps(notification_payload(notification))

    async def send(self, notification: Any) -> None:
        body = self.render(notification)
        headers = {"content-type": "application/json",
                   "idempotency-key": notification.idempotency_key,
                   "user-agent": "kundensprechen-alerts/1"}
        if self.secret:
            headers["x-ksp-signature"] = signature(self.secret, body)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.url}: {exc!r}") from exc
        if response.status_code >= 300:
            error = http_failure(response.status_code, response.text)
            raise DeliveryError(f"{self.url}: {error.reason}", retryable=error.retryable)
