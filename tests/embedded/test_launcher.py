"""The service launcher the tests and the benchmark share: what environment each service gets.

No process is started here: `add` only composes the command line and environment."""

from __future__ import annotations

from pathlib import Path

from deploy.embedded.launcher import KSP, RunScope, ServiceStack


def stack(tmp_path: Path, scope: RunScope | None = None, **env: str) -> ServiceStack:
    return ServiceStack("127.0.0.1:9999", "http://127.0.0.1:8888", tmp_path, scope=scope, env=env)


def test_two_runs_share_no_topic_and_no_consumer_group(tmp_path: Path) -> None:
    a, b = RunScope.new("run"), RunScope.new("run")
    envs = [stack(tmp_path, scope).add(name).process.env or {} for scope in (a, b)
            for name in ("ingest", "scoring", "alerts")]
    names = [{v for k, v in env.items() if k.startswith(("KSP_TOPICS__", "KSP_CONSUMER_GROUP", "KSP_SINK_GROUP",
                                                           "KSP_CASES_TOPIC"))} for env in envs]
    assert not (set().union(*names[:3]) & set().union(*names[3:]))
    assert set(a.all_topics()).isdisjoint(b.all_topics())


def test_workers_of_one_service_share_its_group_and_each_has_its_own_port_and_id(tmp_path: Path) -> None:
    scope = RunScope.new("scale")
    s = stack(tmp_path, scope)
    one, two = s.add("scoring-1", "scoring"), s.add("scoring-2", "scoring")
    env1, env2 = one.process.env or {}, two.process.env or {}
    assert env1["KSP_CONSUMER_GROUP"] == env2["KSP_CONSUMER_GROUP"] == scope.group("scoring")
    assert env1["KSP_SINK_GROUP"] == scope.group("sink")
    assert env1["KSP_WORKER_ID"] != env2["KSP_WORKER_ID"]
    assert one.port != two.port and env1["KSP_WEB_PORT"] == str(one.port)
    assert one.process.argv == [*KSP, "scoring"]


def test_overrides_win_over_the_stack_defaults_and_the_scope(tmp_path: Path) -> None:
    s = stack(tmp_path, RunScope.new("o"), KSP_LOG__JSON_FORMAT="false")
    service = s.add("ingest", env={"KSP_TOPICS__RAW": "mine", "KSP_PORT": "1234"}, port=1234)
    env = service.process.env or {}
    assert (env["KSP_LOG__JSON_FORMAT"], env["KSP_TOPICS__RAW"], env["KSP_PORT"]) == ("false", "mine", "1234")
    assert service.url == "http://127.0.0.1:1234"
    assert env["KSP_PROFILE"] == "dev" and env["KSP_KAFKA__BOOTSTRAP_SERVERS"] == "127.0.0.1:9999"
    assert "KSP_CONSUMER_GROUP" not in env  # ingest consumes nothing


def test_without_a_scope_a_service_gets_the_stack_environment_and_its_port_only(tmp_path: Path) -> None:
    s = stack(tmp_path)
    service = s.add("alerts")
    assert service.process.env == s.env(KSP_API_PORT=str(service.port))
