"""Settings of the alerts service (env prefix `KSP_`, nested with `__`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import ServiceSettings


class AlertsSettings(ServiceSettings):
    worker_id: str = Field("alerts-1", description="Name of this worker (Faust node id, logs).")
    consumer_group: str = Field("ksp-alerts", description="Consumer group of the alerts agent.")
    api_host: str = Field("127.0.0.1", description="Bind address of the alerts API and console.")
    api_port: int = Field(8001, description="Port of the alerts API, /healthz, /readyz, /metrics.")
    webhook_urls: list[str] = Field(
        default_factory=list,
        description="Generic webhook receivers (JSON, HMAC-SHA256 signed); JSON list in the env.",
    )
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="HMAC key for the X-KSP-Signature header; unsigned if empty."
    )
    delivery_attempts: int = Field(6, ge=1, description="Delivery attempts before an alert is parked.")
    delivery_backoff_s: float = Field(0.5, gt=0, description="First retry delay, doubled per attempt.")
    delivery_timeout_s: float = Field(5.0, gt=0, description="Timeout of one delivery attempt.")
    agent_batch_size: int = Field(500, ge=1, description="Scored events the agent takes at once.")
    agent_batch_within_s: float = Field(0.05, gt=0, description="Max wait to fill an agent batch.")
    use_uvloop: bool = Field(True, description="Run the event loop on uvloop.")
