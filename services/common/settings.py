"""Settings shared by every service: Kafka, ClickHouse, topics, logging, profiles.

Every field is read from a `KSP_`-prefixed environment variable (nested fields with `__`,
e.g. `KSP_KAFKA__BOOTSTRAP_SERVERS`). A profile (`KSP_PROFILE=dev|prod`) is an env file in
`deploy/profiles/` whose values apply unless the environment sets them. The dev profile
holds the settings the embedded broker needs (short session timeouts); they are not code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import Topics

PROFILES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "profiles"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512 (with SASL_*).")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_cafile: str | None = Field(None, description="CA bundle to verify the brokers (SSL).")
    session_timeout_s: float = Field(
        30.0,
        description="Consumer group session timeout. Group joins wait up to this long on "
        "some brokers; the dev profile sets 6 s for the embedded broker.",
    )
    heartbeat_interval_s: float = Field(3.0, description="Consumer heartbeat interval.")
    request_timeout_s: float = Field(30.0, description="Client request timeout.")
    fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        description="Longest a consumer fetch waits for data. Apache Kafka answers as soon as "
        "data arrives; the embedded broker waits this long, so the dev profile sets 50 ms.",
    )
    end_offsets_exact: bool = Field(
        True,
        description="Whether the broker reports a partition's true end offset (ListOffsets). "
        "Apache Kafka does; the embedded broker (Tansu) reports the base offset of the last "
        "record batch + 1, so Faust's table recovery would stop short and restore stale state. "
        "When false (the dev profile), services that keep Faust tables (alerts) produce one "
        "record per batch, which makes the reported end exact.",
    )
    topic_partitions: int = Field(4, ge=1, description="Partitions for topics `ksp topics` creates.")
    replication_factor: int = Field(1, ge=1, description="Replication factor for created topics.")


class ClickHouseSettings(BaseModel):
    url: str = Field(
        "http://127.0.0.1:8123",
        description="ClickHouse HTTP(S) endpoint; a server or cluster in production, the "
        "embedded engine locally.",
    )
    database: str = Field("kundensprechen", description="Database holding all tables.")
    username: str = Field("default", description="ClickHouse user.")
    password: SecretStr = Field(SecretStr(""), description="ClickHouse password (never logged).")
    cluster: str | None = Field(
        None, description="Cluster name for ON CLUSTER DDL; unset for a single node."
    )
    ca_cert: str | None = Field(
        None, description="CA bundle to verify an https:// server (default: the system's CAs)."
    )
    client_cert: str | None = Field(None, description="Client certificate for mutual TLS.")
    client_cert_key: str | None = Field(None, description="Key of the client certificate.")
    connect_timeout_s: float = Field(5.0, description="HTTP connect timeout.")
    send_receive_timeout_s: float = Field(60.0, description="HTTP read/write timeout.")


class LogSettings(BaseModel):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    json_format: bool = Field(True, description="Structured JSON logs (one object a line).")


class ServiceSettings(BaseSettings):
    """Base for each service's settings model."""

    model_config = SettingsConfigDict(
        env_prefix="KSP_", env_nested_delimiter="__", extra="ignore", env_file_encoding="utf-8"
    )

    profile: Literal["dev", "prod"] = Field(
        "prod", description="Settings profile; `dev` is for the embedded broker and ClickHouse."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)
    topics: Topics = Field(default_factory=Topics)
    log: LogSettings = Field(default_factory=LogSettings)


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], profile: str | None = None, **overrides: Any) -> S:
    """Build a service's settings once, at its entry point: profile file, then environment."""
    chosen = profile or os.environ.get("KSP_PROFILE", "prod")
    env_file = PROFILES_DIR / f"{chosen}.env"
    if not env_file.is_file():
        raise ValueError(f"unknown settings profile {chosen!r}: no {env_file}")
    return cls(_env_file=env_file, **overrides)  # type: ignore[call-arg]
