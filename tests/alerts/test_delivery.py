"""Delivery channels against real local receivers (HTTP servers, an aiosmtpd SMTP server with
STARTTLS and login): retries with backoff, parking after the last attempt, replay, and the
same idempotency key on every attempt."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from deploy.embedded.process import free_port
from schemas.alert import Alert, AlertEvidence, AlertKind, AlertStatus, Severity
from services.alerts.delivery.alertmanager import AlertmanagerChannel
from services.alerts.delivery.email import EmailChannel
from services.alerts.delivery.outbox import DELIVERED, PARKED, Outbox
from services.alerts.delivery.slack import SlackChannel
from services.alerts.delivery.webhook import WebhookChannel
from services.alerts.notify import Notification
from services.alerts.settings import SmtpSettings

# --------------------------------------------------------------------------- helpers (shared)


def make_alert(customer: str = "c-1", unit: str = "berlin", status: AlertStatus = AlertStatus.firing,
               alert_id: str | None = None, kind: AlertKind = AlertKind.churn_risk,
               severity: Severity = Severity.critical, rule: str = "churn-risk",
               touchpoint: str = "store", at: datetime | None = None) -> Alert:
    at = at or datetime.now(UTC)
    return Alert(
        alert_id=alert_id or f"a-{customer}", fingerprint=f"fp-{customer}", kind=kind, rule=rule,
        detector_version="test", severity=severity, status=status,
        labels={"touchpoint": touchpoint, "unit": unit, "segment": "all", "customer_id": customer,
                "rule": rule, "kind": kind.value, "severity": severity.value},
        summary=f"Customer {customer} at risk",
        evidence=AlertEvidence(metric="churn_intent", observed=1.0, n=1, example_event_ids=[f"e-{customer}"]),
        starts_at=at, ends_at=at + timedelta(minutes=5) if status is AlertStatus.resolved else None)


def make_notification(receiver: str = "webhook-ops", *alerts: Alert, key: str = "key-1") -> Notification:
    alerts = alerts or (make_alert(),)
    return Notification(receiver=receiver, group_key="webhook-ops/churn:{rule=\"churn-risk\"}",
                        status=alerts[0].status, alerts=tuple(alerts), idempotency_key=key)


@dataclass
class Receiver:
    """A real HTTP server that records requests and answers as told: the first `fail_first`
    requests get `fail_status` (or a delay of `delay_s` first)."""

    fail_first: int = 0
    fail_status: int = 503
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append({"path": self.path, "body": body, "json": json.loads(body or b"null"),
                                          "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "at": time.monotonic()})
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                if len(receiver.requests) <= receiver.fail_first:
                    self.send_response(receiver.fail_status)
                    self.end_headers()
                    self.wfile.write(b"try again")
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def settle(outbox: Outbox, timeout: float = 10.0) -> None:
    assert await outbox.drain(timeout), "deliveries still in flight"


def run(coro_fn: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(timeout=2) as client:
            return await coro_fn(client)

    return asyncio.run(main())


# --------------------------------------------------------------------------- webhook


def test_webhook_retries_with_backoff_and_the_same_key_then_delivers(receiver: Receiver) -> None:
    receiver.fail_first = 2
    notification = make_notification("webhook-ops", make_alert("c-1"), make_alert("c-2"), key="grp-1:firing:1")

    async def scenario(client: httpx.AsyncClient) -> Any:
        channel = WebhookChannel(client, "webhook-ops", f"{receiver.url}/hook", b"s3cret")
        outbox = Outbox({"webhook-ops": channel}, attempts=4, backoff_s=0.1)
        [delivery] = outbox.submit(notification)
        await settle(outbox)
        return delivery

    delivery = run(scenario)
    assert delivery.state == DELIVERED and delivery.attempts == 3
    assert len(receiver.requests) == 3
    assert {r["headers"]["idempotency-key"] for r in receiver.requests} == {"grp-1:firing:1"}
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests, receiver.requests[1:])]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19, gaps  # 0.1 s, then doubled
    last = receiver.requests[-1]
    expected = hmac.new(b"s3cret", last["body"], hashlib.sha256).hexdigest()
    assert last["headers"]["x-ksp-signature"] == f"sha256={expected}"
    body = last["json"]
    assert body["receiver"] == "webhook-ops" and body["status"] == "firing"
    assert body["idempotency_key"] == "grp-1:firing:1"
    assert [a["labels"]["customer_id"] for a in body["alerts"]] == ["c-1", "c-2"]
    assert body["group_labels"]["unit"] == "berlin" and "customer_id" not in body["group_labels"]


def test_webhook_parks_after_the_last_attempt_and_a_failed_replay_parks_again(receiver: Receiver) -> None:
    receiver.fail_first = 10**6
    notification = make_notification("webhook-ops", key="k-park")

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"webhook-ops": WebhookChannel(client, "webhook-ops", f"{receiver.url}/hook")},
                        attempts=3, backoff_s=0.05)
        [delivery] = outbox.submit(notification)
        await settle(outbox)
        assert outbox.parked() == [delivery] and delivery.state == PARKED and delivery.attempts == 3
        assert "HTTP 503" in (delivery.last_error or "") and receiver.url in (delivery.last_error or "")
        outbox.replay(delivery.delivery_id)  # the receiver still fails: a fresh budget, parked again
        await settle(outbox)
        return outbox, delivery

    outbox, delivery = run(scenario)
    assert outbox.parked() == [delivery] and delivery.replays == 1 and delivery.attempts == 3
    assert len(receiver.requests) == 6
    assert {r["headers"]["idempotency-key"] for r in receiver.requests} == {"k-park"}
    listed = delivery.to_json()
    assert listed["state"] == "parked" and listed["alert_ids"] == ["a-c-1"] and listed["idempotency_key"] == "k-park"


def test_webhook_replay_after_the_receiver_recovers(receiver: Receiver) -> None:
    receiver.fail_first = 3
    notification = make_notification("webhook-ops", key="k-replay")

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"webhook-ops": WebhookChannel(client, "webhook-ops", f"{receiver.url}/hook")},
                        attempts=3, backoff_s=0.05)
        [delivery] = outbox.submit(notification)
        await settle(outbox)
        assert delivery.state == PARKED and outbox.parked() == [delivery]
        outbox.replay(delivery.delivery_id)
        await settle(outbox)
        with pytest.raises(ValueError, match="not parked"):
            outbox.replay(delivery.delivery_id)
        with pytest.raises(KeyError):
            outbox.replay("unknown")
        return outbox, delivery

    outbox, delivery = run(scenario)
    assert delivery.state == DELIVERED and delivery.replays == 1 and outbox.parked() == []
    assert len(receiver.requests) == 4
    assert {r["headers"]["idempotency-key"] for r in receiver.requests} == {"k-replay"}
    assert [h["event"] for h in delivery.history] == ["failed", "failed", "failed", "parked", "replay", "delivered"]


def test_a_client_error_parks_at_once(receiver: Receiver) -> None:
    receiver.fail_first, receiver.fail_status = 10**6, 400

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"w": WebhookChannel(client, "w", f"{receiver.url}/hook")}, attempts=5, backoff_s=0.05)
        [delivery] = outbox.submit(make_notification("w"))
        await settle(outbox)
        return delivery

    delivery = run(scenario)
    assert delivery.state == PARKED and delivery.attempts == 1 and "HTTP 400" in delivery.last_error


def test_a_slow_receiver_times_out_and_is_retried(receiver: Receiver) -> None:
    receiver.delay_s = 0.6

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"w": WebhookChannel(client, "w", f"{receiver.url}/hook")}, attempts=2, backoff_s=0.05,
                        timeout_s=0.3)
        [delivery] = outbox.submit(make_notification("w"))
        await settle(outbox)
        return delivery

    delivery = run(scenario)
    assert delivery.state == PARKED and delivery.attempts == 2 and "timed out" in delivery.last_error


def test_routing_configured_receiver_fallback_and_unknown_receivers(receiver: Receiver) -> None:
    other = Receiver().start()
    try:
        async def scenario(client: httpx.AsyncClient) -> Any:
            outbox = Outbox({"slack-ops": WebhookChannel(client, "slack-ops", f"{other.url}/named"),
                             "webhook": WebhookChannel(client, "webhook", f"{receiver.url}/fallback")},
                            fallback=["webhook"], attempts=1, backoff_s=0.05)
            named = outbox.submit(make_notification("slack-ops", key="k-named"))
            fallback = outbox.submit(make_notification("webhook-ops", key="k-fallback"))
            await settle(outbox)
            lonely = Outbox({}, attempts=1)
            [unrouted] = lonely.submit(make_notification("nobody", key="k-nobody"))
            return named, fallback, unrouted

        named, fallback, unrouted = run(scenario)
    finally:
        other.stop()
    assert [d.channel for d in named] == ["slack-ops"] and other.requests[0]["path"] == "/named"
    assert [d.channel for d in fallback] == ["webhook"] and receiver.requests[0]["path"] == "/fallback"
    assert unrouted.state == PARKED and "no receiver named 'nobody'" in unrouted.last_error


# --------------------------------------------------------------------------- slack


def test_slack_message_with_text_and_blocks_retried_parked_replayed(receiver: Receiver) -> None:
    receiver.fail_first = 2
    notification = make_notification("slack-ops", make_alert("c-7"), key="k-slack")

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"slack-ops": SlackChannel(client, "slack-ops", f"{receiver.url}/services/T/B/X",
                                                   "http://console")}, attempts=2, backoff_s=0.05)
        [delivery] = outbox.submit(notification)
        await settle(outbox)
        assert delivery.state == PARKED
        outbox.replay(delivery.delivery_id)
        await settle(outbox)
        return delivery

    delivery = run(scenario)
    assert delivery.state == DELIVERED and len(receiver.requests) == 3
    message = receiver.requests[-1]["json"]
    assert receiver.requests[-1]["path"] == "/services/T/B/X"
    assert "FIRING" in message["text"] and "Customer c-7 at risk" in message["text"]
    assert message["blocks"][0]["type"] == "header"
    section = message["blocks"][1]["text"]["text"]
    assert "churn-risk" in section and "customer_id=c-7" in section and "http://console/v1/alerts/a-c-7" in section
    assert message["blocks"][-1]["type"] == "context"
    assert {r["headers"]["idempotency-key"] for r in receiver.requests} == {"k-slack"}


# --------------------------------------------------------------------------- alertmanager


def test_alertmanager_push_firing_and_resolved_with_retry_park_replay(receiver: Receiver) -> None:
    receiver.fail_first = 3
    firing = make_notification("alertmanager", make_alert("c-9"), key="k-am-1")
    resolved = make_notification("alertmanager", make_alert("c-9", status=AlertStatus.resolved), key="k-am-2")

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"alertmanager": AlertmanagerChannel(client, "alertmanager", receiver.url + "/",
                                                             "http://ksp:8001")}, attempts=3, backoff_s=0.05)
        [first] = outbox.submit(firing)
        await settle(outbox)
        assert first.state == PARKED
        outbox.replay(first.delivery_id)
        await settle(outbox)
        [second] = outbox.submit(resolved)
        await settle(outbox)
        return first, second

    first, second = run(scenario)
    assert first.state == DELIVERED and second.state == DELIVERED
    assert all(r["path"] == "/api/v2/alerts" for r in receiver.requests)
    [pushed] = receiver.requests[3]["json"]
    assert pushed["labels"]["alertname"] == "churn-risk" and pushed["labels"]["customer_id"] == "c-9"
    assert pushed["labels"]["severity"] == "critical" and pushed["labels"]["ksp_receiver"] == "alertmanager"
    assert pushed["annotations"]["summary"] == "Customer c-9 at risk"
    assert pushed["startsAt"].endswith("Z") and "endsAt" not in pushed
    assert pushed["generatorURL"] == "http://ksp:8001/v1/alerts/a-c-9"
    [ended] = receiver.requests[4]["json"]
    assert ended["endsAt"].endswith("Z") and ended["labels"] == pushed["labels"]


# --------------------------------------------------------------------------- e-mail


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl not available for a test certificate: {exc}")
    return cert, key


class SmtpServer:
    """aiosmtpd on a free port, STARTTLS required before AUTH, one user."""

    def __init__(self, cert: Path, key: Path, port: int | None = None) -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[Any] = []
        server = self

        class Handler:
            async def handle_DATA(self, srv: Any, session: Any, envelope: Any) -> str:
                server.messages.append(envelope)
                return "250 OK"

        def authenticator(srv: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = data.login == b"alerts" and data.password == b"pw"
            return AuthResult(success=ok, handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, authenticator=authenticator, auth_require_tls=True)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def test_email_over_starttls_with_login_plain_and_html(tls_cert: tuple[Path, Path]) -> None:
    server = SmtpServer(*tls_cert).start()
    try:
        smtp = SmtpSettings(host="127.0.0.1", port=server.port, starttls=True, ssl_verify=False, username="alerts",
                            password=SecretStr("pw"), sender="ksp@example.test", to=["cx@example.test"])
        notification = make_notification("email-cx", make_alert("c-<3>"), key="k-mail")

        async def scenario(client: httpx.AsyncClient) -> Any:
            outbox = Outbox({"email-cx": EmailChannel("email-cx", smtp, base_url="http://ksp")}, attempts=1)
            [delivery] = outbox.submit(notification)
            await settle(outbox)
            return delivery

        delivery = run(scenario)
    finally:
        server.stop()
    assert delivery.state == DELIVERED, delivery.last_error
    [envelope] = server.messages
    assert envelope.mail_from == "ksp@example.test" and envelope.rcpt_tos == ["cx@example.test"]
    import email

    message = email.message_from_bytes(envelope.original_content)
    assert message["X-KSP-Idempotency-Key"] == "k-mail" and "FIRING" in message["Subject"]
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in message.walk()
             if not p.is_multipart()}
    assert "Customer c-<3> at risk" in parts["text/plain"]
    assert "Customer c-&lt;3&gt; at risk" in parts["text/html"] and "http://ksp/v1/alerts/a-c-" in parts["text/html"]


def test_email_wrong_password_parks_and_a_down_server_is_retried_then_replayed(tls_cert: tuple[Path, Path]) -> None:
    port = free_port()
    notification = make_notification("email-cx", key="k-mail-2")
    smtp = SmtpSettings(host="127.0.0.1", port=port, ssl_verify=False, username="alerts",
                        password=SecretStr("pw"), to=["cx@example.test"])
    wrong = smtp.model_copy(update={"password": SecretStr("nope")})

    async def scenario(client: httpx.AsyncClient) -> Any:
        outbox = Outbox({"email-cx": EmailChannel("email-cx", smtp), "bad": EmailChannel("bad", wrong)},
                        attempts=2, backoff_s=0.05)
        [down] = outbox.submit(notification)  # nobody listens yet: connection refused, retried, parked
        await settle(outbox)
        assert down.state == PARKED and down.attempts == 2 and "Connection refused" in down.last_error
        server = SmtpServer(*tls_cert, port=port).start()
        try:
            outbox.replay(down.delivery_id)
            await settle(outbox)
            [bad] = outbox.submit(make_notification("bad", key="k-bad"))
            await settle(outbox)
        finally:
            server.stop()
        return down, bad, server

    down, bad, server = run(scenario)
    assert down.state == DELIVERED and len(server.messages) == 1
    assert bad.state == PARKED and bad.attempts == 1 and "authentication failed" in bad.last_error
