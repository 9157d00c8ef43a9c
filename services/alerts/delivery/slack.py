"""Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): `text` plus `blocks`.

`text` is the fallback every client shows (and what notifications on phones read); `blocks`
give a header, one section per alert (at most 20, the rest summarised) and a context line with
the group and the idempotency key. One attempt per `send`; the outbox retries.
"""

from __future__ import annotations

from typing import Any

import httpx

from services.alerts.delivery.base import DeliveryError, alerts_of, http_failure, status_of

MAX_ALERT_BLOCKS = 20
_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def slack_message(notification: Any, base_url: str | None = None) -> dict[str, Any]:
    alerts = alerts_of(notification)
    status = status_of(notification)
    title = f"[{status.upper()}] {len(alerts)} alert{'s' if len(alerts) != 1 else ''}: {notification.group_key}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
    ]
    for alert in alerts[:MAX_ALERT_BLOCKS]:
        scope = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        line = (f"{_ICON.get(alert.severity.value, '')} *{alert.severity.value}* `{alert.rule}` "
                f"({alert.status.value})\n{alert.summary}\n_{scope}_")
        if base_url:
            line += f"\n<{base_url}/v1/alerts/{alert.alert_id}|case {alert.alert_id}>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line[:3000]}})
    if len(alerts) > MAX_ALERT_BLOCKS:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"… and {len(alerts) - MAX_ALERT_BLOCKS} more"}})
    blocks.append({"type": "context", "elements": [{
        "type": "mrkdwn", "text": f"receiver {notification.receiver} · key {notification.idempotency_key}"}]})
    text = title + "".join(f"\n• {a.summary}" for a in alerts[:MAX_ALERT_BLOCKS])
    return {"text": text, "blocks": blocks}


class SlackChannel:
    kind = "slack"

    def __init__(self, client: httpx.AsyncClient, name: str, url: str, base_url: str | None = None) -> None:
        self.client = client
        self.name = name
        self.url = url
        self.base_url = base_url

    async def send(self, notification: Any) -> None:
        headers = {"idempotency-key": notification.idempotency_key}
        try:
            response = await self.client.post(self.url, json=slack_message(notification, self.base_url),
                                              headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.url}: {exc!r}") from exc
        if response.status_code >= 300:
            error = http_failure(response.status_code, response.text)
            raise DeliveryError(f"{self.url}: {error.reason}", retryable=error.retryable)
