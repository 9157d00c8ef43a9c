"""E-mail over SMTP: STARTTLS and login from settings, a plain-text and an HTML part.

The stdlib SMTP client runs in a worker thread (one connection per notification), so the event
loop never waits on the mail server. `Message-ID` is derived from the idempotency key and the
key is also sent as `X-KSP-Idempotency-Key`, so mail systems and readers can spot repeats.
One attempt per `send`; the outbox retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from services.alerts.delivery.base import DeliveryError, alerts_of, status_of
from services.alerts.settings import SmtpSettings


def build_message(notification: Any, sender: str, to: list[str], base_url: str | None = None) -> EmailMessage:
    alerts = alerts_of(notification)
    status = status_of(notification)
    subject = f"[Kundensprechen {status.upper()}] {len(alerts)} alert(s): {notification.group_key}"
    lines = [subject, ""]
    rows = []
    for alert in alerts:
        scope = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        link = f"{base_url}/v1/alerts/{alert.alert_id}" if base_url else ""
        lines += [f"- [{alert.severity.value}] {alert.rule} ({alert.status.value}): {alert.summary}",
                  f"  scope: {scope}", f"  started: {alert.starts_at.isoformat()}"]
        if link:
            lines.append(f"  case: {link}")
        cell = html.escape(alert.summary)
        if link:
            cell = f'<a href="{html.escape(link)}">{cell}</a>'
        rows.append(f"<tr><td>{html.escape(alert.severity.value)}</td><td>{html.escape(alert.rule)}</td>"
                    f"<td>{html.escape(alert.status.value)}</td><td>{cell}</td>"
                    f"<td>{html.escape(scope)}</td></tr>")
    lines += ["", f"Idempotency key: {notification.idempotency_key}"]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256(notification.idempotency_key.encode()).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@kundensprechen>"
    message["X-KSP-Idempotency-Key"] = notification.idempotency_key
    message.set_content("\n".join(lines))
    message.add_alternative(
        "<html><body>"
        f"<h2>{html.escape(subject)}</h2>"
        "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">"
        "<tr><th>severity</th><th>rule</th><th>status</th><th>summary</th><th>scope</th></tr>"
        + "".join(rows) + "</table>"
        f"<p><small>Idempotency key: {html.escape(notification.idempotency_key)}</small></p>"
        "</body></html>",
        subtype="html",
    )
    return message


class EmailChannel:
    kind = "email"

    def __init__(self, name: str, smtp: SmtpSettings, to: list[str] | None = None,
                 base_url: str | None = None) -> None:
        self.name = name
        self.smtp = smtp
        self.to = list(to or smtp.to)
        self.base_url = base_url
        if not self.to:
            raise ValueError(f"e-mail receiver {name!r} has no recipients (set `to` or smtp.to)")

    def _send_blocking(self, message: EmailMessage) -> None:
        s = self.smtp
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as client:
            client.ehlo()
            if s.starttls:
                context = ssl.create_default_context()
                if not s.ssl_verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                client.starttls(context=context)
                client.ehlo()
            if s.username:
                password = s.password.get_secret_value() if s.password else ""
                client.login(s.username, password)
            client.send_message(message, from_addr=s.sender, to_addrs=self.to)

    async def send(self, notification: Any) -> None:
        message = build_message(notification, self.smtp.sender, self.to, self.base_url)
        try:
            await asyncio.to_thread(self._send_blocking, message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"smtp://{self.smtp.host}:{self.smtp.port}: authentication failed: {exc}",
                                retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp://{self.smtp.host}:{self.smtp.port}: {exc!r}") from exc
