"""deploy/compose/compose.yaml: valid against the Compose Specification, complete, and wired."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import COMPOSE_FILE

SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("breakage", ["misspelt key", "bad condition", "volumes not a list"])
def test_the_validator_catches_a_broken_compose_file(compose: dict[str, Any], breakage: str) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")
    broken = json.loads(json.dumps(compose))
    if breakage == "misspelt key":
        broken["services"]["scoring"]["replcias"] = 2
    elif breakage == "bad condition":
        broken["services"]["ingest"]["depends_on"]["topics"]["condition"] = "whenever"
    else:
        broken["services"]["ingest"]["volumes"] = "../config"
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))


def test_the_stack_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "clickhouse", "migrate", "topics", "ingest", "scoring", "alerts", "prometheus",
            "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert services["scoring"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["migrate"] and services["topics"]["command"] == ["topics"]
    assert services["ingest"]["command"] == ["ingest"]
    assert "exec ksp scoring" in services["scoring"]["entrypoint"][-1]
    assert "exec ksp alerts" in services["alerts"]["entrypoint"][-1]
    for name in ("ingest", "scoring", "alerts"):
        after = services[name]["depends_on"]
        assert after["topics"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["KSP_PROFILE"] == "prod"
    assert services["scoring"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        tag = re.sub(r"^\$\{[A-Z_]+:-(.+)\}$", r"\1", image).rsplit(":", 1)
        assert len(tag) == 2 and tag[1] not in ("latest", ""), f"{name}: {image} is not pinned"


def test_mounted_config_files_exist(compose: dict[str, Any]) -> None:
    base = COMPOSE_FILE.parent
    mounted = [v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])
               if v.startswith(".")]
    mounted += [s["file"] for s in compose.get("secrets", {}).values()]
    dashboards = (base / "../grafana/dashboards").resolve()
    for source in mounted:
        path = (base / source).resolve()
        if path == dashboards:  # written by the dashboards work; created empty by Docker if absent
            continue
        assert path.exists(), f"{source} (mounted in compose.yaml) does not exist"
    assert "../grafana/dashboards:/var/lib/grafana/dashboards:ro" in compose["services"]["grafana"]["volumes"]


def test_ksp_service_environments_are_valid_settings(compose: dict[str, Any], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each service's environment, defaults of ${VAR:-default} applied, builds its settings."""
    from services.common.settings import load_settings
    from tests.deploy.conftest import SERVICE_SETTINGS

    for name, settings_cls in SERVICE_SETTINGS.items():
        env = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v))
               for k, v in compose["services"][name]["environment"].items()}
        with monkeypatch.context() as m:
            for key in [k for k in __import__("os").environ if k.startswith("KSP_")]:
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, value)
            settings = load_settings(settings_cls)
        assert settings.profile == "prod"
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.clickhouse.url == "http://clickhouse:8123"
