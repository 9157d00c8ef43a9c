"""Every KSP_* variable used in deploy/ and the Dockerfile is a real setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import KafkaSettings
from tests.deploy.conftest import DEPLOY, DOCKERFILE, KSP_VAR, settings_env_names, valid_env_names


def _deploy_files() -> list[Path]:
    files = [DOCKERFILE]
    for folder in ("compose", "k8s", "profiles", "prometheus", "grafana"):
        files += [p for p in (DEPLOY / folder).rglob("*") if p.is_file() and p.suffix != ".json"]
    return files


def test_the_valid_names_come_from_the_settings_models() -> None:
    names = valid_env_names()
    assert {"KSP_PROFILE", "KSP_KAFKA__BOOTSTRAP_SERVERS", "KSP_KAFKA__SASL_PASSWORD", "KSP_CLICKHOUSE__URL",
            "KSP_CLICKHOUSE__CLUSTER", "KSP_TOPICS__RAW", "KSP_LOG__JSON_FORMAT", "KSP_API_KEYS_FILE",
            "KSP_WEB_PORT", "KSP_API_PORT", "KSP_PORT", "KSP_WORKER_ID", "KSP_SINK_GROUP"} <= names
    assert "KSP_KAFKA_BOOTSTRAP_SERVERS" not in names  # single underscore: not a nested field
    assert len(settings_env_names(KafkaSettings, "KSP_KAFKA__")) == len(KafkaSettings.model_fields)


@pytest.mark.parametrize("path", _deploy_files(), ids=lambda p: str(p.relative_to(DEPLOY.parent)))
def test_every_ksp_variable_is_a_setting(path: Path) -> None:
    used = set(KSP_VAR.findall(path.read_text(errors="replace")))
    unknown = sorted(used - valid_env_names())
    assert not unknown, f"{path.name} uses variables that no settings model reads: {unknown}"


def test_the_deployment_files_use_settings_at_all() -> None:
    used = set().union(*(set(KSP_VAR.findall(p.read_text(errors="replace"))) for p in _deploy_files()))
    assert {"KSP_KAFKA__BOOTSTRAP_SERVERS", "KSP_CLICKHOUSE__URL", "KSP_CLICKHOUSE__PASSWORD",
            "KSP_KAFKA__SASL_PASSWORD", "KSP_API_KEYS_FILE", "KSP_WORKER_ID"} <= used
