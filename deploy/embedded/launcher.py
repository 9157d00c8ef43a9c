"""The real services (ingest, scoring, alerts) as child processes on a given broker and ClickHouse,
for the tests and the benchmark: one place for the environment each service gets, per-run topics
and consumer groups, start, readiness, stop and the log tails a failing wait reports.

    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, logs, scope=RunScope.new("e2e"))
    stack.add("ingest"); stack.add("scoring-1", "scoring"); stack.add("scoring-2", "scoring")
    stack.start()            # migrations, topics, processes, /readyz of each
    ...
    stack.stop()             # SIGTERM, SIGKILL after the grace period
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deploy.embedded.process import ManagedProcess, free_port
from schemas.topics import Topics

KSP = [sys.executable, "-m", "services.cli"]
ROOT = Path(__file__).resolve().parents[2]
# The setting that carries each service's HTTP port (readiness, metrics, APIs).
PORT_SETTING = {"ingest": "KSP_PORT", "scoring": "KSP_WEB_PORT", "alerts": "KSP_API_PORT"}


def log_tails(processes: Mapping[str, ManagedProcess] | None) -> str:
    return "".join(f"\n[{name}]{p._log_tail()}" for name, p in (processes or {}).items())


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               processes: Mapping[str, ManagedProcess] | None = None, *, interval: float = 0.1) -> Any:
    """The condition's first truthy value; on time-out, fail with the processes' log tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{log_tails(processes)}")


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def readyz(url: str) -> dict[str, Any] | None:
    """The service's /readyz answer when it is ready, else None."""
    try:
        response = httpx.get(f"{url}/readyz", timeout=1)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def partitions(url: str) -> int:
    """How many partitions a Faust worker owns (0 while it is not ready)."""
    ready = readyz(url)
    return int(ready["partitions"]) if ready else 0


@dataclass(frozen=True)
class RunScope:
    """Topic and consumer-group names of one run, so that runs sharing a broker do not meet."""

    prefix: str

    @classmethod
    def new(cls, name: str) -> RunScope:
        return cls(f"{name}-{uuid.uuid4().hex[:8]}")

    @property
    def run(self) -> str:
        return self.prefix.rsplit("-", 1)[-1]

    @property
    def topics(self) -> Topics:
        return Topics(**{name: f"{self.prefix}.{name}" for name in Topics.model_fields})

    @property
    def cases_topic(self) -> str:
        return f"{self.prefix}.cases"

    def all_topics(self) -> list[str]:
        return [*self.topics.all(), self.cases_topic]

    def group(self, role: str) -> str:
        """The consumer group of `role` (a service, or `sink` for scoring's ClickHouse sink)."""
        return f"{self.prefix}-{role}"

    def env(self, command: str, name: str) -> dict[str, str]:
        """Topics for every service; a consumer group per service (shared by its workers)."""
        topics = {f"KSP_TOPICS__{key.upper()}": topic for key, topic in self.topics.model_dump().items()}
        groups = {"KSP_CONSUMER_GROUP": self.group(command), "KSP_WORKER_ID": f"{self.prefix}-{name}"}
        if command == "scoring":
            groups["KSP_SINK_GROUP"] = self.group("sink")
        return {**topics, "KSP_CASES_TOPIC": self.cases_topic, **(groups if command != "ingest" else {})}


@dataclass
class Service:
    """One service process and where it answers."""

    name: str
    command: str
    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float, path: str = "/readyz") -> None:
        """Until `path` answers 200; fails early (with the log tail) when the process exits."""
        self.process.wait_ready(lambda: http_ok(f"{self.url}{path}"), timeout=timeout)

    def log_tail(self, chars: int = 3000) -> str:
        path = self.process.log_path
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""


class ServiceStack:
    """Services on one broker and ClickHouse; `scope` gives them topics and groups of their own."""

    def __init__(self, bootstrap: str, clickhouse_url: str, logs: Path, *, scope: RunScope | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.bootstrap = bootstrap
        self.clickhouse_url = clickhouse_url
        self.logs = logs
        self.scope = scope
        self.overrides = dict(env or {})
        self.services: dict[str, Service] = {}

    @property
    def topics(self) -> Topics:
        return self.scope.topics if self.scope else Topics()

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        return {name: service.process for name, service in self.services.items()}

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    def env(self, **overrides: str) -> dict[str, str]:
        """What every child gets: the dev profile on this broker and ClickHouse, then the overrides."""
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "KSP_PROFILE": "dev",
            "KSP_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "KSP_CLICKHOUSE__URL": self.clickhouse_url,
            "KSP_LOG__JSON_FORMAT": "true",
            **self.overrides,
            **overrides,
        }

    def add(self, name: str, command: str | None = None, *, env: Mapping[str, str] | None = None,
            argv: list[str] | None = None, port: int | None = None) -> Service:
        """A service (not started yet); `command` defaults to the name (`ksp <command>`)."""
        command = command or name
        port = port or free_port()
        scoped = self.scope.env(command, name) if self.scope else {}
        full = self.env(**{**scoped, PORT_SETTING[command]: str(port), **(env or {})})
        log = self.logs / (f"{self.scope.prefix}-{name}.log" if self.scope else f"{name}.log")
        process = ManagedProcess(name, argv or [*KSP, command], env=full, log_path=log, cwd=ROOT)
        self.services[name] = Service(name, command, port, process)
        return self.services[name]

    def prepare(self) -> None:
        """Migrations and topics first: Tansu acknowledges sends to unknown topics and drops them."""
        from services.common.clickhouse import migrate
        from services.common.kafka import ensure_topics
        from services.common.settings import ClickHouseSettings, KafkaSettings

        migrate(ClickHouseSettings(url=self.clickhouse_url))
        topics = self.scope.all_topics() if self.scope else self.topics.all()
        ensure_topics(KafkaSettings(bootstrap_servers=self.bootstrap), topics)

    def start(self, timeout: float = 60.0) -> ServiceStack:
        """Prepare, start every service and wait for each one's /readyz; on failure stop them all."""
        self.prepare()
        try:
            for service in self.services.values():
                service.process.start()
            for service in self.services.values():
                service.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 15.0) -> None:
        for service in self.services.values():
            service.process.stop(grace=grace)
