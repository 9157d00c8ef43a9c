"""Kafka client configuration from settings, shared by every service."""

from __future__ import annotations

from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from services.common.settings import KafkaSettings


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


def aiokafka_config(kafka: KafkaSettings) -> dict[str, Any]:
    config = security_config(kafka)
    if kafka.ssl_cafile:
        from aiokafka.helpers import create_ssl_context

        config["ssl_context"] = create_ssl_context(cafile=config.pop("ssl_cafile"))
    config["request_timeout_ms"] = int(kafka.request_timeout_s * 1000)
    return config


def ensure_topics(kafka: KafkaSettings, names: list[str]) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    admin = KafkaAdminClient(**security_config(kafka), client_id="ksp-topics")
    try:
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        for name in missing:
            topic = NewTopic(name, kafka.topic_partitions, kafka.replication_factor)
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
        return missing
    finally:
        admin.close()
