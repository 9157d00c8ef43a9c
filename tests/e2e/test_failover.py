"""Scale-out and failover, locally: two scoring and two alerts workers as real processes share
the partitions of their topics; when one scoring worker is killed (SIGKILL, no clean shutdown)
mid-stream, the survivor takes over its partitions and every event is stored exactly once.

Runs against the session's embedded broker and ClickHouse, on topics and consumer groups of
its own so it does not disturb the other end-to-end tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer

from deploy.embedded.launcher import RunScope, ServiceStack, partitions, wait_until
from services.common.clickhouse import connect
from services.common.kafka import security_config
from services.common.settings import ClickHouseSettings, KafkaSettings

EVENTS = 600

pytestmark = pytest.mark.slow


def _event(event_id: str, i: int) -> dict:
    return {
        "event_id": event_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "touchpoint": ["web", "app", "store", "chat"][i % 4],
        "source": "failover-test",
        "unit": "failover-unit",
        "customer_id": f"c-failover-{i % 50}",
        "responses": [{"metric": "nps", "value": 9}],
        "comment": {"text": "Schnell und freundlich, danke!"},
    }


def test_killed_scoring_worker_hands_over_and_every_event_is_stored_once(  # type: ignore[no-untyped-def]
    kafka, clickhouse, tmp_path: Path
) -> None:
    # Every topic and consumer group of the deployment gets a name of this run's own.
    scope = RunScope.new("ksp-failover")
    run, topics = scope.run, scope.topics
    ch_settings = ClickHouseSettings(url=clickhouse.url)
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)
    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, tmp_path, scope=scope)
    for n in (1, 2):
        stack.add(f"scoring-{n}", "scoring")
        stack.add(f"alerts-{n}", "alerts")
    processes = stack.processes
    urls = {name: service.url for name, service in stack.services.items()}

    producer = KafkaProducer(**security_config(kafka_settings), acks="all", linger_ms=5)
    ids = [f"failover-{run}-{i:05d}" for i in range(EVENTS)]

    def produce(indices: range) -> None:
        for i in indices:
            producer.send(topics.raw, key=f"c-failover-{i % 50}".encode(),
                          value=json.dumps(_event(ids[i], i)).encode())
        producer.flush(timeout=30)

    def stored() -> dict[str, int]:
        client = connect(ch_settings)
        try:
            rows = client.query(
                "SELECT event_id, count() FROM kundensprechen.feedback_events "
                "WHERE event_id IN {ids:Array(String)} GROUP BY event_id", parameters={"ids": ids},
            ).result_rows
        finally:
            client.close()
        return {event_id: int(n) for event_id, n in rows}

    try:
        # Both workers of each service join their group and share its partitions.
        stack.start(timeout=60)
        wait_until(lambda: all(partitions(urls[f"scoring-{n}"]) > 0 for n in (1, 2)), 30,
              "both scoring workers to own partitions", processes)
        wait_until(lambda: all(partitions(urls[f"alerts-{n}"]) > 0 for n in (1, 2)), 30,
              "both alerts workers to own partitions", processes)
        before = {n: partitions(urls[f"scoring-{n}"]) for n in (1, 2)}

        # First half, then kill scoring-1 without warning while events are still flowing.
        produce(range(EVENTS // 2))
        wait_until(lambda: len(stored()) >= EVENTS // 10, 30, "the first events in ClickHouse", processes)
        processes["scoring-1"].kill()
        assert not processes["scoring-1"].alive()
        produce(range(EVENTS // 2, EVENTS))

        # The survivor takes over the dead worker's partitions (after the session timeout).
        total = before[1] + before[2]
        wait_until(lambda: partitions(urls["scoring-2"]) == total, 45,
              f"scoring-2 to own all {total} partitions (had {before[2]})", processes)

        # Every event is stored, and none twice (no FINAL: the rows as they are).
        counts = wait_until(lambda: c if len(c := stored()) == EVENTS else None, 45,
                       f"all {EVENTS} events in ClickHouse", processes)
        assert set(counts) == set(ids)
        duplicated = {event_id: n for event_id, n in counts.items() if n != 1}
        assert not duplicated, f"stored more than once: {list(duplicated.items())[:10]}"
        # The alerts workers kept running through the scoring failover.
        assert all(processes[f"alerts-{n}"].alive() for n in (1, 2))
        assert processes["scoring-2"].alive()
    finally:
        producer.close(timeout=5)
        stack.stop()
