"""Shared loaders for the deployment tests: compose file, Kubernetes manifests, settings names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from services.alerts.settings import AlertsSettings
from services.common.settings import ServiceSettings
from services.ingest.settings import IngestSettings
from services.scoring.settings import ScoringSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
K8S_DIR = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
SERVICE_SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings, "scoring": ScoringSettings, "alerts": AlertsSettings,
    "migrate": ServiceSettings, "topics": ServiceSettings,
}
KSP_VAR = re.compile(r"\bKSP_[A-Z0-9_]+\b")


def settings_env_names(model: type[BaseModel], prefix: str = "KSP_") -> set[str]:
    """Every environment variable a settings model reads: `KSP_<FIELD>`, and for a nested
    model `KSP_<FIELD>__<SUBFIELD>` (pydantic-settings, env_nested_delimiter `__`)."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        names.add(env)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_env_names(annotation, f"{env}__")
    return names


def valid_env_names() -> set[str]:
    return set().union(*(settings_env_names(cls) for cls in (IngestSettings, ScoringSettings, AlertsSettings)))


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def k8s_files() -> list[Path]:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    return [K8S_DIR / name for name in kustomization["resources"]]


def load_k8s() -> list[dict[str, Any]]:
    docs = []
    for path in k8s_files():
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return load_k8s()
