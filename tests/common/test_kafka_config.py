"""Kafka security settings reach every client: kafka-python, aiokafka and Faust."""

from __future__ import annotations

import ssl

import faust
from pydantic import SecretStr

from services.common.kafka import aiokafka_config, faust_credentials, security_config
from services.common.settings import KafkaSettings


def test_plaintext_needs_no_credentials() -> None:
    kafka = KafkaSettings()
    assert faust_credentials(kafka) is None
    assert "ssl_context" not in aiokafka_config(kafka)


def test_sasl_scram_over_tls_reaches_every_client() -> None:
    kafka = KafkaSettings(bootstrap_servers="a:9093,b:9093", security_protocol="SASL_SSL",
                          sasl_mechanism="SCRAM-SHA-512", sasl_username="ksp",
                          sasl_password=SecretStr("s3cret"))
    assert security_config(kafka)["sasl_plain_password"] == "s3cret"
    assert isinstance(aiokafka_config(kafka)["ssl_context"], ssl.SSLContext)
    credentials = faust_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "ksp" and credentials.ssl_context is not None


def test_tls_only_gives_faust_ssl_credentials() -> None:
    kafka = KafkaSettings(security_protocol="SSL")
    assert isinstance(faust_credentials(kafka), faust.SSLCredentials)


def test_the_password_is_never_in_the_settings_repr() -> None:
    kafka = KafkaSettings(sasl_password=SecretStr("s3cret"))
    assert "s3cret" not in repr(kafka)
