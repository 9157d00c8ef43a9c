"""Kafka client configuration from settings, shared by every service."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from services.common.settings import KafkaSettings

if TYPE_CHECKING:
    from aiokafka.client import AIOKafkaClient


def security_config(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection and security options in the spelling both kafka-python and aiokafka accept."""
    config: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        config["sasl_mechanism"] = kafka.sasl_mechanism
        config["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            config["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    if kafka.ssl_cafile:
        config["ssl_cafile"] = kafka.ssl_cafile
    return config


def uses_tls(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol in ("SSL", "SASL_SSL")


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """Verifying TLS context: the configured CA bundle, else the system's."""
    if not uses_tls(kafka):
        return None
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(cafile=kafka.ssl_cafile)


def aiokafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    config = security_config(kafka)
    config.pop("ssl_cafile", None)
    if uses_tls(kafka):
        config["ssl_context"] = ssl_context(kafka)
    config["request_timeout_ms"] = int(kafka.request_timeout_s * 1000)
    return config


def faust_credentials(kafka: KafkaSettings) -> Any:
    """Faust's `broker_credentials` for SASL and/or TLS; None for plaintext."""
    import faust

    context = ssl_context(kafka)
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(username=kafka.sasl_username, password=password,
                                     mechanism=kafka.sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def ensure_topics(kafka: KafkaSettings, names: list[str], partitions: int | None = None,
                  configs: dict[str, str] | None = None) -> list[str]:
    """Create the topics that do not exist yet (with `partitions`, default
    `kafka.topic_partitions`, and topic `configs` such as cleanup.policy); returns the ones created."""
    admin = KafkaAdminClient(**security_config(kafka), client_id="ksp-topics")
    try:
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        for name in missing:
            topic = NewTopic(name, partitions or kafka.topic_partitions, kafka.replication_factor,
                             topic_configs=configs or {})
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        admin.close()


def partition_count(kafka: KafkaSettings, name: str) -> int | None:
    """How many partitions the topic has; None if it does not exist (yet)."""
    admin = KafkaAdminClient(**security_config(kafka), client_id="ksp-topics")
    try:
        topics = admin.describe_topics([name])
    except KafkaError:
        return None  # unknown topic (some brokers answer with an error, others with no partitions)
    else:
        partitions = [t.get("partitions") for t in topics if t.get("name") == name and not t.get("error_code")]
        return len(partitions[0]) if partitions and partitions[0] else None
    finally:
        admin.close()


async def track_topics(client: AIOKafkaClient, topics: Iterable[str]) -> None:
    """Keep `topics` in every metadata refresh of an aiokafka producer's client.

    aiokafka refreshes metadata for all topics until the producer first sends to a topic its
    bootstrap metadata lacked (one created after it started); from then on it asks only for
    the topics it was asked about. A topic known only from the bootstrap then drops out at the
    next refresh, and a batch still lingering for it finds no leader: its sender keeps
    refreshing without that topic until the batch expires (request timeout) and fails. So a
    service tracks every topic it produces to as soon as its producer starts."""
    for topic in topics:
        client.add_topic(topic)
    await client.force_metadata_update()
