"""Chaos-suite fixtures: its own broker and ClickHouse (so they can be frozen, killed and
restarted without touching the session ones), webhook receivers, and the service stack."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.embedded.clickhouse import EmbeddedClickHouse
from deploy.embedded.kafka import EmbeddedKafka
from deploy.embedded.process import free_port
from tests.chaos.harness import FreezableReceiver, Stack, descendants


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault-injection test (kills, freezes, restarts); `make chaos`")


@dataclass
class ChaosEnv:
    broker: EmbeddedKafka
    clickhouse: EmbeddedClickHouse
    logs: Path
    baseline: set[int]
    receivers: list[FreezableReceiver] = field(default_factory=list)
    stacks: list[Stack] = field(default_factory=list)
    _stack: Stack | None = None

    def new_stack(self, **kwargs) -> Stack:  # type: ignore[no-untyped-def]
        stack = Stack(self.broker.bootstrap_servers, self.clickhouse.url, self.logs, **kwargs)
        self.stacks.append(stack)
        return stack.start()

    @property
    def stack(self) -> Stack:
        """The healthy stack (ingest, scoring, alerts with two webhook receivers), started once."""
        if self._stack is None:
            self._stack = self.new_stack(receivers=self.receivers)
        return self._stack

    def shutdown(self) -> None:
        for stack in self.stacks:
            stack.stop()
        for receiver in self.receivers:
            receiver.stop()
        self.receivers = []
        self.broker.thaw()
        self.broker.stop()
        self.clickhouse.stop()


@pytest.fixture(scope="session")
def chaos_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosEnv]:
    baseline = set(descendants())
    # KSP_CHAOS_LOGS keeps the service logs somewhere pytest does not clean up.
    root = Path(os.environ["KSP_CHAOS_LOGS"]) if os.environ.get("KSP_CHAOS_LOGS") else tmp_path_factory.mktemp("chaos")
    root.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedKafka(log_path=root / "broker.log").start()
    clickhouse = EmbeddedClickHouse(root / f"clickhouse-{os.getpid()}-{int(time.time())}", port=free_port(), log_path=root / "clickhouse.log")
    clickhouse.start()
    env = ChaosEnv(broker, clickhouse, root, baseline,
                   receivers=[FreezableReceiver("a"), FreezableReceiver("b")])
    try:
        yield env
    finally:
        env.shutdown()
