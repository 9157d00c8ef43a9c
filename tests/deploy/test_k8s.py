"""deploy/k8s/: every manifest valid against the Kubernetes OpenAPI schemas (offline, from the
kubernetes-validate package), KEDA objects checked structurally, and the pieces wired together."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.conftest import K8S_DIR, SERVICE_SETTINGS, k8s_files

# The oldest Kubernetes release the manifests must work on (all APIs used are GA there).
K8S_VERSIONS = ("1.30.0", "1.33.0")
PORTS = {"ingest": 8000, "scoring": 6066, "alerts": 8001}
KEDA = "keda.sh/v1alpha1"


def _by(k8s: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in k8s if doc["kind"] == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_kustomization_lists_every_manifest() -> None:
    listed = {p.name for p in k8s_files()}
    present = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_objects_are_valid_against_the_kubernetes_schemas(k8s: list[dict[str, Any]], version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a dev dependency")
    builtin = [doc for doc in k8s if doc["apiVersion"] != KEDA]
    assert len(builtin) >= 15
    errors = []
    for doc in builtin:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def test_the_validator_rejects_a_broken_deployment(k8s: list[dict[str, Any]]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a dev dependency")
    broken = yaml.safe_load(yaml.safe_dump(_by(k8s, "Deployment")["ksp-scoring"]))
    _container(broken)["livenessProbe"]["httpGet"]["pathh"] = "/healthz"  # strict: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_deployments_probe_the_right_ports_with_resources_and_non_root(k8s: list[dict[str, Any]]) -> None:
    deployments = _by(k8s, "Deployment")
    assert set(deployments) == {f"ksp-{name}" for name in PORTS}
    for name, port in PORTS.items():
        deployment = deployments[f"ksp-{name}"]
        container = _container(deployment)
        assert container["args"] == [name]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get["path"] == path and named[get["port"]] == port, f"{name} {probe}"
        env = {e["name"]: e for e in container["env"]}
        port_var = {"ingest": "KSP_PORT", "scoring": "KSP_WEB_PORT", "alerts": "KSP_API_PORT"}[name]
        assert env[port_var]["value"] == str(port)
        assert env[{"ingest": "KSP_HOST", "scoring": "KSP_WEB_HOST", "alerts": "KSP_API_HOST"}[name]]["value"] == "0.0.0.0"
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])  # Faust datadir
        assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_every_deployment_has_a_pdb_and_a_service_that_select_its_pods(k8s: list[dict[str, Any]]) -> None:
    pdbs, services = _by(k8s, "PodDisruptionBudget"), _by(k8s, "Service")
    for name, deployment in _by(k8s, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        service = services[name]
        assert service["spec"]["selector"].items() <= labels.items()
        ports = {p["name"] for p in _container(deployment)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_keda_scales_scoring_and_alerts_on_kafka_lag(k8s: list[dict[str, Any]]) -> None:
    scaled = _by(k8s, "ScaledObject")
    auths = _by(k8s, "TriggerAuthentication")
    deployments = _by(k8s, "Deployment")
    config = _by(k8s, "ConfigMap")["ksp-config"]["data"]
    partitions = int(config["KSP_KAFKA__TOPIC_PARTITIONS"])
    groups = {"ksp-scoring": {"ksp-scoring", "ksp-sink"}, "ksp-alerts": {"ksp-alerts"}}
    assert set(scaled) == set(groups)
    for name, obj in scaled.items():
        assert obj["apiVersion"] == KEDA
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] == name and name in deployments
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
        assert {t["metadata"]["consumerGroup"] for t in spec["triggers"]} == groups[name]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert meta["bootstrapServers"] == config["KSP_KAFKA__BOOTSTRAP_SERVERS"]
            assert meta["topic"] in ("ksp.feedback.raw", "ksp.feedback.scored")
            assert int(meta["lagThreshold"]) > 0
            assert trigger["authenticationRef"]["name"] in auths
    for auth in auths.values():
        assert auth["apiVersion"] == KEDA
        assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} >= {"sasl", "username", "password", "tls"}


def test_references_to_configmaps_and_secrets_resolve(k8s: list[dict[str, Any]]) -> None:
    configmaps, secrets = _by(k8s, "ConfigMap"), _by(k8s, "Secret")
    pods = [d["spec"]["template"]["spec"] for d in k8s if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        for container in pod.get("initContainers", []) + pod["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], ref
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                secret = secrets[volume["secret"]["secretName"]]["stringData"]
                assert all(item["key"] in secret for item in volume["secret"].get("items", []))
    for auth in _by(k8s, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]["stringData"], ref


def test_migrate_job_creates_topics_then_the_cluster_schema(k8s: list[dict[str, Any]]) -> None:
    job = _by(k8s, "Job")["ksp-migrate"]["spec"]["template"]["spec"]
    assert [c["args"] for c in job["initContainers"]] == [["topics"]]
    assert [c["args"] for c in job["containers"]] == [["migrate"]]
    config = _by(k8s, "ConfigMap")["ksp-config"]["data"]
    assert config["KSP_CLICKHOUSE__CLUSTER"], "ON CLUSTER DDL in production"
    assert config["KSP_PROFILE"] == "prod"


def test_network_policies_deny_by_default_and_open_the_service_ports(k8s: list[dict[str, Any]]) -> None:
    policies = _by(k8s, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["ingress"] == [] and deny["egress"] == []
    for name, port in PORTS.items():
        spec = policies[f"ksp-{name}"]["spec"]
        opened = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
        assert port in opened, f"{name}: {port} not reachable (probes come from the kubelet, scraping from monitoring)"
        egress_ports = {p["port"] for rule in spec["egress"] for p in rule.get("ports", [])}
        assert 53 in egress_ports and 9093 in egress_ports  # DNS and Kafka (TLS)


def test_pod_environments_build_valid_settings(k8s: list[dict[str, Any]], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from services.common.settings import load_settings

    config = _by(k8s, "ConfigMap")["ksp-config"]["data"]
    secrets = _by(k8s, "Secret")["ksp-secrets"]["stringData"]
    for doc in k8s:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            env = dict(config)
            for item in container.get("env", []):
                ref = item.get("valueFrom", {})
                env[item["name"]] = (item["value"] if "value" in item
                                     else secrets[ref["secretKeyRef"]["key"]] if "secretKeyRef" in ref else "pod-1")
            with monkeypatch.context() as m:
                for key in [k for k in os.environ if k.startswith("KSP_")]:
                    m.delenv(key)
                for key, value in env.items():
                    m.setenv(key, value)
                settings = load_settings(SERVICE_SETTINGS[container["args"][0]])
            assert settings.kafka.security_protocol == "SASL_SSL"
            assert settings.kafka.sasl_password is not None
            assert settings.clickhouse.url.startswith("https://")
