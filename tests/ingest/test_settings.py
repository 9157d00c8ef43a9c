"""IngestSettings from the environment (KSP_*), as `load_settings` reads them."""

from __future__ import annotations

import json

import pytest

from services.common.settings import load_settings
from services.ingest.auth import KeyStore, hash_key
from services.ingest.settings import IngestSettings


def test_env_vars(monkeypatch):
    monkeypatch.setenv("KSP_KAFKA_IDEMPOTENT_PRODUCER", "false")
    monkeypatch.setenv("KSP_AUTH_ENABLED", "true")  # the dev profile turns auth off
    monkeypatch.setenv("KSP_PORT", "8123")
    monkeypatch.setenv("KSP_MAX_BATCH_ITEMS", "50")
    monkeypatch.setenv("KSP_REDACTION", "all")
    monkeypatch.setenv("KSP_API_KEYS", json.dumps([{"name": "shop", "sha256": hash_key("s3cret"),
                                                    "sources": ["shop-frontend"]}]))
    monkeypatch.setenv("KSP_QUALTRICS_MAPPINGS", json.dumps({"*": {"nps": "QID1"}}))
    s = load_settings(IngestSettings, "dev")
    assert (s.kafka_idempotent_producer, s.port, s.max_batch_items, s.redaction) == (False, 8123, 50, "all")
    assert s.qualtrics_mappings["*"].nps == "QID1"
    principal = KeyStore.from_settings(s).authenticate({"x-api-key": "s3cret"})
    assert principal.name == "shop" and principal.sources == frozenset({"shop-frontend"})


def test_defaults_and_descriptions(monkeypatch):
    for name in ("KSP_AUTH_ENABLED", "KSP_KAFKA_IDEMPOTENT_PRODUCER", "KSP_PORT", "KSP_HOST"):
        monkeypatch.delenv(name, raising=False)
    s = IngestSettings(profile="dev")
    assert (s.host, s.port, s.max_batch_items, s.kafka_idempotent_producer, s.auth_enabled) == (
        "127.0.0.1", 8000, 1000, True, True)
    from services.common.settings import ServiceSettings

    own = set(IngestSettings.model_fields) - set(ServiceSettings.model_fields)
    assert own and all(IngestSettings.model_fields[name].description for name in own)


def test_auth_off_refused_outside_dev(monkeypatch):
    monkeypatch.delenv("KSP_PROFILE", raising=False)
    monkeypatch.setenv("KSP_AUTH_ENABLED", "false")
    with pytest.raises(ValueError, match="dev profile"):
        load_settings(IngestSettings, "prod")
