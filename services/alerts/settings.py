"""Settings of the alerts service (env prefix `KSP_`, nested with `__`).

Receivers are named: a notification carries the name of its receiver (chosen by the routing
in the rules file, e.g. `webhook-ops`), and `receivers` maps names to channels, e.g.

    KSP_RECEIVERS='{"webhook-ops": {"type": "webhook", "url": "https://ops.example/hook",
                                    "secret": "..."},
                    "slack-cx": {"type": "slack", "url": "https://hooks.slack.com/services/..."},
                    "mail-cx": {"type": "email", "to": ["cx@example.com"]},
                    "am": {"type": "alertmanager", "url": "http://alertmanager:9093"}}'

SMTP server settings are shared by every e-mail receiver (`KSP_SMTP__HOST`, ...). The legacy
`KSP_WEBHOOK_URLS` / `KSP_WEBHOOK_SECRET` form the fallback receiver: it gets every
notification whose receiver name is not configured in `receivers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from schemas.alert import Severity
from services.common.settings import ServiceSettings


class SmtpSettings(BaseModel):
    host: str = Field("127.0.0.1", description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port (587 submission, 25 relay).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before sending.")
    ssl_verify: bool = Field(True, description="Verify the server certificate when using STARTTLS.")
    username: str | None = Field(None, description="SMTP login user; no login when unset.")
    password: SecretStr | None = Field(None, description="SMTP login password (never logged).")
    sender: str = Field("kundensprechen@localhost", description="From address of alert e-mails.")
    to: list[str] = Field(default_factory=list,
                          description="Default recipients of e-mail receivers that name none.")
    timeout_s: float = Field(10.0, gt=0, description="Timeout of one SMTP conversation.")


class ReceiverSettings(BaseModel):
    """One named receiver: a channel and where it delivers."""

    type: Literal["webhook", "slack", "email", "alertmanager"] = Field(
        description="Channel: generic signed JSON webhook, Slack-compatible incoming webhook, "
        "SMTP e-mail, or a Prometheus Alertmanager (POST /api/v2/alerts)."
    )
    url: str | None = Field(None, description="Webhook / Slack URL, or the Alertmanager base URL.")
    secret: SecretStr | None = Field(
        None, description="Webhook HMAC-SHA256 key (X-KSP-Signature); default `webhook_secret`."
    )
    to: list[str] = Field(default_factory=list, description="E-mail recipients (default smtp.to).")
    attempts: int | None = Field(None, ge=1, description="Override of `delivery_attempts`.")


class AlertsSettings(ServiceSettings):
    worker_id: str = Field("alerts-1", description="Name of this worker (Faust node id, logs).")
    consumer_group: str = Field("ksp-alerts", description="Consumer group of the alerts agent.")
    api_host: str = Field("127.0.0.1", description="Bind address of the alerts API and console.")
    api_port: int = Field(8001, description="Port of the alerts API, /healthz, /readyz, /metrics.")
    public_url: str | None = Field(
        None, description="URL where people reach this API/console (links in notifications, "
        "Alertmanager generatorURL); default http://api_host:api_port."
    )
    rules_path: Path | None = Field(
        None, description="Rules YAML (detectors, routing, grouping); built-in rules when unset. "
        "Re-read on change (hot reload) every `rules_poll_s`."
    )
    rules_poll_s: float = Field(2.0, gt=0, description="How often the rules file is checked for changes.")
    tick_interval_s: float = Field(
        0.5, gt=0, description="Period of the housekeeping tick: time-based alert evaluation, "
        "due notifications -> outbox, SLA escalation."
    )
    # receivers
    receivers: dict[str, ReceiverSettings] = Field(
        default_factory=dict, description="Named receivers (JSON object in the env), see module doc."
    )
    webhook_urls: list[str] = Field(
        default_factory=list,
        description="Fallback generic webhook receivers (JSON, HMAC-SHA256 signed) for "
        "notifications whose receiver is not configured; JSON list in the env.",
    )
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="HMAC key for the X-KSP-Signature header; unsigned if empty."
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="SMTP server for e-mail receivers.")
    # delivery
    delivery_attempts: int = Field(6, ge=1, description="Delivery attempts before a delivery is parked.")
    delivery_backoff_s: float = Field(0.5, gt=0, description="First retry delay, doubled per attempt.")
    delivery_backoff_max_s: float = Field(60.0, gt=0, description="Upper bound of one retry delay.")
    delivery_timeout_s: float = Field(5.0, gt=0, description="Timeout of one delivery attempt.")
    shutdown_flush_s: float = Field(
        10.0, ge=0, description="On shutdown, how long to keep delivering what is due."
    )
    # cases
    cases_topic: str = Field(
        "ksp.alerts.cases", description="Kafka topic of case events (the event log of the case "
        "lifecycle). Where each case stands is kept in the Faust table `cases` (changelog "
        "`<consumer_group>-cases-changelog`); the table is rebuilt from this topic if it is empty."
    )
    case_retention_days: float = Field(
        90.0, gt=0, description="Cases that are over (resolved by a person and their condition cleared) "
        "and unchanged this long are dropped from memory: the API, the console and the recovery report "
        "cover the open cases and this recent past; every case stays on the cases topic and in ClickHouse "
        "(`alert_events`). A later follow-up of a forgotten churn case's customer is not recorded."
    )
    sla_info_s: float = Field(7 * 86400.0, gt=0, description="SLA of an info case: resolve within (s).")
    sla_warning_s: float = Field(86400.0, gt=0, description="SLA of a warning case: resolve within (s).")
    sla_critical_s: float = Field(4 * 3600.0, gt=0, description="SLA of a critical case: resolve within (s).")
    clickhouse_history: bool = Field(
        True, description="Write alert state changes and case events to ClickHouse "
        "(`alerts`, `alert_events`)."
    )
    rebuild_timeout_s: float = Field(
        60.0, gt=0, description="Max time to replay the state topic at start-up (and the cases topic "
        "when the cases table is empty)."
    )
    state_topic: str | None = Field(
        None, description="Kafka topic (compacted, keyed) of the state that must survive a restart: "
        "pending and parked deliveries, silences, notification groups; replayed at start-up. "
        "Default: `<cases_topic>.state`."
    )
    detector_snapshot_interval_s: float = Field(
        30.0, ge=0, description="How often the drop detectors' learned state (baseline, CUSUM) and "
        "the theme-surge windows of the scopes that changed, and the churn histories of the customers "
        "that changed, are written "
        "to the state topic, so a restarted worker or the new "
        "owner of a scope's partition goes on detecting at once instead of relearning; also written "
        "at a graceful stop and when partitions are revoked. 0: only then."
    )
    # API
    stream_quality_interval_s: float = Field(
        15.0, gt=0, description="Period of the `quality` event on GET /v1/stream."
    )
    console_dir: Path | None = Field(
        None, description="Static ops console served at /; default services/alerts/console/ if it exists."
    )
    # agent
    agent_batch_size: int = Field(500, ge=1, description="Scored events the agent takes at once.")
    agent_batch_within_s: float = Field(0.05, gt=0, description="Max wait to fill an agent batch.")
    producer_linger_ms: int = Field(
        5, ge=0, description="Producer linger: sends to the repartition, notify, alerts, cases and state "
        "topics wait this long to share a request (every scored event is re-published once per scope level).")
    producer_max_batch_bytes: int = Field(
        1_048_576, description="Producer max batch size in bytes (1 record per batch when "
        "`kafka.end_offsets_exact` is false, so the cases table recovers completely).")
    repartition_partitions: int | None = Field(
        None, ge=1, description="Partitions of the repartition topics `<consumer_group>.by-scope` "
        "and `.by-customer` (detector state is spread over the workers by them) when they are "
        "created; default: as many as the scored topic has. Changing it later moves scopes and "
        "customers between workers: drop baselines, surge windows and churn histories move with their "
        "snapshots."
    )
    use_uvloop: bool = Field(True, description="Run the event loop on uvloop.")

    def sla_s(self, severity: Severity | str) -> float:
        """The SLA (seconds from opening to resolution) of a case of this severity."""
        return {"info": self.sla_info_s, "warning": self.sla_warning_s,
                "critical": self.sla_critical_s}[str(Severity(severity).value)]

    def state_topic_name(self) -> str:
        return self.state_topic or f"{self.cases_topic}.state"

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")
