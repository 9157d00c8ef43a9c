"""Generic webhook: JSON body, HMAC-SHA256 signature, idempotency key, retries with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

import httpx

from schemas.alert import Alert

log = logging.getLogger("ksp.alerts.webhook")


class DeliveryFailed(Exception):
    pass


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def idempotency_key(alert: Alert) -> str:
    """Same alert state -> same key, so a receiver can drop a repeated delivery."""
    return f"{alert.alert_id}:{alert.status.value}"


class WebhookChannel:
    name = "webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, secret: bytes, *, attempts: int,
                 backoff_s: float) -> None:
        self.client = client
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.backoff_s = backoff_s

    async def deliver(self, alert: Alert) -> None:
        body = alert.model_dump_json().encode()
        headers = {"content-type": "application/json", "idempotency-key": idempotency_key(alert)}
        if self.secret:
            headers["x-ksp-signature"] = signature(self.secret, body)
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self.client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = repr(exc)
            log.warning("webhook %s attempt %d/%d failed: %s", self.url, attempt, self.attempts, reason)
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        raise DeliveryFailed(f"{self.url}: {reason}")
