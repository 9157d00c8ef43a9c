"""Settings of the ingest service.

Every field is read from a `KSP_`-prefixed environment variable (see
services/common/settings.py), e.g. `KSP_PORT=8000`, `KSP_KAFKA_IDEMPOTENT_PRODUCER=false`,
`KSP_API_KEYS='[{"name": "shop", "sha256": "…", "sources": ["shop-frontend"]}]'`.
Structured fields (lists, mappings) are JSON in the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from schemas.feedback import Touchpoint
from services.common.settings import ServiceSettings


class ApiKey(BaseModel):
    """One API key, stored only as its SHA-256 hex digest (`python -m services.ingest.auth KEY`)."""

    name: str = Field(description="Who holds the key; used in logs, metrics and rate limits.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex digest of the key.")
    touchpoints: list[Touchpoint] | None = Field(
        None, description="Touchpoints this key may send for; absent = any."
    )
    sources: list[str] | None = Field(None, description="Sources this key may send for; absent = any.")
    rate_limit_events_per_s: float | None = Field(
        None, gt=0, description="Overrides `rate_limit_events_per_s` for this key."
    )
    rate_limit_burst: int | None = Field(None, ge=1, description="Overrides `rate_limit_burst`.")


class TypeformMapping(BaseModel):
    """Which Typeform field (by `ref`, or by `id`) holds which measure, for one form."""

    touchpoint: Touchpoint = Field(Touchpoint.survey_email, description="Touchpoint of the events.")
    source: str = Field("typeform", description="`source` of the events.")
    unit: str | None = Field(None, description="Fixed unit; else the hidden field `unit_hidden`.")
    segment: str | None = Field(None, description="Fixed segment; else the hidden field.")
    nps: str | None = Field(None, description="Field ref/id of the 0-10 NPS question.")
    csat: str | None = Field(None, description="Field ref/id of the CSAT question.")
    csat_scale: tuple[float, float] = Field((1, 5), description="CSAT answer scale (min, max).")
    ces: str | None = Field(None, description="Field ref/id of the CES question.")
    ces_scale: tuple[float, float] = Field((1, 7), description="CES answer scale (min, max).")
    comment: str | None = Field(None, description="Field ref/id of the free-text question.")
    customer_id_hidden: str = Field("customer_id", description="Hidden field with the customer id.")
    unit_hidden: str = Field("unit", description="Hidden field with the unit.")
    segment_hidden: str = Field("segment", description="Hidden field with the segment.")
    secret: str | None = Field(
        None, description="Webhook secret; when set, `Typeform-Signature` is verified."
    )


class QualtricsMapping(BaseModel):
    """Which Qualtrics question id (key in `values`) holds which measure, for one survey."""

    touchpoint: Touchpoint = Field(Touchpoint.survey_email, description="Touchpoint of the events.")
    source: str = Field("qualtrics", description="`source` of the events.")
    unit: str | None = Field(None, description="Fixed unit; else the embedded-data field.")
    segment: str | None = Field(None, description="Fixed segment; else the embedded-data field.")
    nps: str | None = Field(None, description="Key of the 0-10 NPS answer, e.g. `QID1`.")
    csat: str | None = Field(None, description="Key of the CSAT answer.")
    csat_scale: tuple[float, float] = Field((1, 5), description="CSAT answer scale (min, max).")
    ces: str | None = Field(None, description="Key of the CES answer.")
    ces_scale: tuple[float, float] = Field((1, 7), description="CES answer scale (min, max).")
    comment: str | None = Field(None, description="Key of the free text, e.g. `QID3_TEXT`.")
    customer_id_field: str = Field("customer_id", description="Embedded-data key of the customer id.")
    unit_field: str = Field("unit", description="Embedded-data key of the unit.")
    segment_field: str = Field("segment", description="Embedded-data key of the segment.")


class IngestSettings(ServiceSettings):
    """The ingest service: HTTP in, Kafka (`topics.raw`) out."""

    host: str = Field("127.0.0.1", description="Address to bind (KSP_HOST).")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind (KSP_PORT).")
    workers: int = Field(1, ge=1, description="uvicorn worker processes (KSP_WORKERS).")
    max_batch_items: int = Field(1000, ge=1, description="Most events in one request.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger is 413."
    )
    max_inflight_events: int = Field(
        200_000,
        ge=1,
        description="Events awaiting Kafka acknowledgement per worker; beyond it the ingest "
        "buffer is full and requests get 503 with Retry-After.",
    )
    produce_timeout_s: float = Field(
        10.0, gt=0, description="How long a request waits for Kafka's acks before answering 503."
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 answers.")
    readiness_timeout_s: float = Field(1.0, gt=0, description="Broker metadata timeout of /readyz.")
    readiness_cache_s: float = Field(1.0, ge=0, description="How long a /readyz result is reused.")

    # Authentication and rate limits.
    auth_enabled: bool = Field(
        True, description="Require an API key (`Authorization: Bearer` or `X-API-Key`); "
        "may be false only with the dev profile."
    )
    api_keys: list[ApiKey] = Field(
        default_factory=list, description="API keys (hashed), JSON in KSP_API_KEYS."
    )
    api_keys_file: Path | None = Field(
        None, description="YAML or JSON file with `keys: [...]` (same shape as `api_keys`)."
    )
    rate_limit_enabled: bool = Field(True, description="Per-key token bucket on events.")
    rate_limit_events_per_s: float = Field(
        20_000.0, gt=0, description="Sustained events/s per key and worker process."
    )
    rate_limit_burst: int = Field(
        40_000, ge=1, description="Bucket size: events a key may send at once per worker."
    )

    # Redaction of personal data in comments.
    redaction: Literal["internal", "all", "off"] = Field(
        "internal",
        description="Redact e-mail addresses, phone numbers and IBANs in comments: only of "
        "internal (employee) feedback, of all feedback, or never.",
    )
    redaction_phone_region: str = Field(
        "DE", description="Region for phone numbers written without country code."
    )

    # Kafka producer.
    kafka_idempotent_producer: bool = Field(
        True,
        description="aiokafka idempotent producer (KSP_KAFKA_IDEMPOTENT_PRODUCER); the embedded "
        "broker (Tansu) does not support it, so the dev profile sets false.",
    )
    producer_linger_ms: int = Field(5, ge=0, description="Producer linger.ms.")
    producer_max_batch_bytes: int = Field(
        1024 * 1024, ge=1024, description="Producer max batch size per partition, bytes."
    )
    producer_max_request_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest produce request, bytes."
    )
    producer_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = Field(
        "none", description="Producer compression codec."
    )

    # Webhook adapters, keyed by Typeform form id / Qualtrics survey id; "*" is the fallback.
    typeform_mappings: dict[str, TypeformMapping] = Field(
        default_factory=dict, description="Typeform form id -> field mapping."
    )
    qualtrics_mappings: dict[str, QualtricsMapping] = Field(
        default_factory=dict, description="Qualtrics survey id -> question mapping."
    )

    opentelemetry: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry tracing/metrics/logs (KSP_OPENTELEMETRY). Off by "
        "default: Prometheus is the service's metrics, and the per-request check costs time.",
    )
    gc_young_threshold: int = Field(
        20_000,
        ge=700,
        description="Allocations between collections of CPython's youngest garbage-collector "
        "generation (its default is 700): validating a 1,000-event request allocates some 10,000 "
        "objects, and with 700 the collector ran ~15 times a request, a quarter of the CPU.",
    )
    graceful_shutdown_s: float = Field(
        15.0, gt=0, description="Time to finish requests and flush the producer on shutdown."
    )

    @model_validator(mode="after")
    def _auth_only_off_in_dev(self) -> IngestSettings:
        if not self.auth_enabled and self.profile != "dev":
            raise ValueError("auth_enabled=false is allowed only with the dev profile")
        return self
