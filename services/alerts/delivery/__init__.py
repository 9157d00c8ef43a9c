"""Delivery channels and the outbox.

A channel makes ONE attempt to deliver a notification (`send`) and raises `DeliveryError`
when it fails; the `Outbox` owns retries with exponential backoff per channel, parks what
still fails after the last attempt (kept, listed by the API, replayable) and never drops a
delivery silently. Every attempt carries the notification's idempotency key.

- `webhook.py`: generic signed JSON webhook (`X-KSP-Signature`, `Idempotency-Key`).
- `slack.py`: Slack-compatible incoming webhook (text + blocks).
- `email.py`: SMTP with STARTTLS and login, plain text + HTML.
- `alertmanager.py`: push to a Prometheus Alertmanager (POST /api/v2/alerts).
"""

from services.alerts.delivery.base import Channel, DeliveryError, notification_payload

__all__ = ["Channel", "DeliveryError", "notification_payload"]
