"""Session fixtures: the real embedded Kafka broker and ClickHouse on free ports.

Tests opt in to infrastructure by asking for `kafka` or `clickhouse` (and are marked so
`make test-fast` can leave them out). Nothing is mocked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.embedded.kafka import EmbeddedKafka

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"

# Tests run on the dev profile (short consumer-group timeouts for the embedded broker).
os.environ.setdefault("KSP_PROFILE", "dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "kafka" in fixtures:
            item.add_marker(pytest.mark.kafka)
        if "clickhouse" in fixtures:
            item.add_marker(pytest.mark.clickhouse)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    log = tmp_path_factory.mktemp("kafka") / "broker.log"
    broker = EmbeddedKafka(log_path=log).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from deploy.embedded.clickhouse import EmbeddedClickHouse
    from deploy.embedded.process import free_port

    data_dir = tmp_path_factory.mktemp("clickhouse")
    server = EmbeddedClickHouse(data_dir=data_dir, port=free_port())
    server.start()
    yield server
    server.stop()
