"""End to end on the real broker and ClickHouse: rows ClickHouse refused go to the dead-letter
topic; once the operator fixed the table, `ksp deadletters redrive` brings them back through the
real sink, and re-driving twice still stores each row exactly once."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from services.cli import app
from services.ops.deadletter_kafka import read_dead_letters
from services.scoring.metrics import ScoringMetrics
from tests.scoring import test_sink_poison as sink_test
from tests.scoring.test_sink_poison import (
    POISON_CONSTRAINT,
    Env,
    aggregated_responses,
    events,
    produce,
    run_sink,
    sample,
    stored_counts,
)

env = sink_test.env  # the sink test's fixture: a fresh database and topics per test


def scored_ends(env: Env) -> dict[int, int]:
    """The offset after the last message of each partition of the scored topic."""
    ends = dict.fromkeys(range(env.kafka.topic_partitions), 0)
    for message in read_dead_letters(env.kafka, env.scored, idle_s=5):
        ends[message.partition] = max(ends[message.partition], message.offset + 1)
    return ends


def test_refused_rows_redriven_twice_after_the_fix_are_stored_exactly_once(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSP_KAFKA__BOOTSTRAP_SERVERS", env.kafka.bootstrap_servers)
    monkeypatch.setenv("KSP_TOPICS__DEADLETTER", env.dead)
    env.query(f"ALTER TABLE {{table}} ADD CONSTRAINT no_poison {POISON_CONSTRAINT}")
    scored = events(env.run, 60, poison={7, 30, 44})
    metrics = ScoringMetrics(CollectorRegistry())
    group = f"sink-{env.run}"

    expected = asyncio.run(produce(env, scored))
    asyncio.run(run_sink(env, metrics, expected, max_rows=500, group=group))
    assert len(stored_counts(env)) == 57

    env.query("ALTER TABLE {table} DROP CONSTRAINT no_poison")  # the operator's fix
    for _ in range(2):
        result = CliRunner().invoke(app, ["deadletters", "redrive", "--reason", "clickhouse_refused"])
        assert result.exit_code == 0, result.output
        assert "3 re-driven: clickhouse_refused 3; 0 failed; 0 skipped" in result.stdout
    asyncio.run(run_sink(env, metrics, scored_ends(env), max_rows=500, group=group))

    assert stored_counts(env) == {e.event_id: 1 for e in scored}
    assert aggregated_responses(env) == 60  # the materialized views, too, saw each row once
    assert sample(metrics, "ksp_sink_duplicates_skipped_total") == 3  # the second re-drive's copies
