"""The ClickHouse sink on the real embedded broker and ClickHouse: rows ClickHouse refuses for
good go to the dead-letter topic with the reason and the partition moves on; every other row is
stored exactly once, also after a crash and a replay with other batch boundaries, and across a
ClickHouse outage (retried, nothing lost, nothing committed meanwhile).

Faults are injected into ClickHouse itself: a CHECK constraint refuses comments containing
POISON, a narrowed column refuses values that do not fit, or the server is stopped."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from schemas.scored import ScoredEvent, SentimentLabel, TextAnalysis
from services.common.clickhouse import connect, migrate
from services.common.kafka import aiokafka_config, ensure_topics
from services.common.settings import ClickHouseSettings, KafkaSettings
from services.scoring.metrics import ScoringMetrics
from services.scoring.processing import RawMessage, process_message
from services.scoring.sink.consumer import ClickHouseSink
from services.scoring.sink.errors import refusal
from services.scoring.sink.rows import COLUMNS, dedup_token, to_row
from services.scoring.sink.writer import ClickHouseWriter

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POISON_CONSTRAINT = "CHECK comment NOT LIKE '%POISON%'"


@dataclass
class Env:
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    scored: str
    dead: str
    run: str

    @property
    def table(self) -> str:
        return f"{self.clickhouse.database}.feedback_events"

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        client = connect(self.clickhouse)
        try:
            sql = sql.replace("{table}", self.table).replace("{db}", self.clickhouse.database)
            return [tuple(row) for row in client.query(sql).result_rows]
        finally:
            client.close()


@pytest.fixture
def env(kafka, clickhouse) -> Iterator[Env]:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    settings = ClickHouseSettings(url=clickhouse.url, database=f"sink_{run}")
    migrate(settings)
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_partitions=2)
    scored, dead = f"test.sink.{run}.scored", f"test.sink.{run}.dead"
    ensure_topics(kafka_settings, [scored, dead])
    yield Env(kafka_settings, settings, scored, dead, run)
    if clickhouse.running:
        connect(settings, database="").command(f"DROP DATABASE IF EXISTS {settings.database}")


def neutral_text(text: str, language: str | None) -> TextAnalysis:
    return TextAnalysis(language=language or "und", sentiment=0.0, sentiment_label=SentimentLabel.neutral)


def scored_event(run: str, i: int, comment: str) -> ScoredEvent:
    raw = orjson.dumps({
        "event_id": f"{run}-{i:04d}", "occurred_at": "2026-11-28T10:00:00+00:00", "touchpoint": "web",
        "source": "sink-test", "unit": run, "responses": [{"metric": "nps", "value": i % 11}],
        "comment": {"text": comment},
    })
    result = process_message(RawMessage(raw, None, 0, i, 1_764_330_000_000), analyse_text=neutral_text, now=NOW)
    assert isinstance(result, ScoredEvent), result
    return result


def events(run: str, n: int, poison: set[int]) -> list[ScoredEvent]:
    return [scored_event(run, i, f"POISON {i}" if i in poison else f"fine {i}") for i in range(n)]


async def produce(env: Env, scored: list[ScoredEvent]) -> dict[int, int]:
    """Publish to the scored topic as the agent does (keyed by event id); returns the offset to
    commit per partition once everything is handled."""
    producer = AIOKafkaProducer(**aiokafka_config(env.kafka), enable_idempotence=False)
    await producer.start()
    try:
        sends = [await producer.send(env.scored, e.model_dump_json().encode(), key=e.event_id.encode())
                 for e in scored]
        metadata = await asyncio.gather(*sends)
    finally:
        await producer.stop()
    ends: dict[int, int] = {}
    for m in metadata:
        ends[m.partition] = max(ends.get(m.partition, 0), m.offset + 1)
    return ends


def writer_for(env: Env, metrics: ScoringMetrics) -> ClickHouseWriter:
    return ClickHouseWriter(lambda: connect(env.clickhouse), env.table, env.scored, backoff_initial_s=0.1,
                            backoff_max_s=0.5,
                            on_failure=lambda kind: metrics.sink_insert_failures.labels(kind).inc())


async def run_sink(env: Env, metrics: ScoringMetrics, expected: dict[int, int], *, max_rows: int, group: str,
                   timeout: float = 60, while_running: Callable[[ClickHouseSink], Any] | None = None) -> None:
    """Run the real sink until its group has committed `expected`, then stop it."""
    consumer = AIOKafkaConsumer(**aiokafka_config(env.kafka), group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=6000,
                                heartbeat_interval_ms=1000, fetch_max_wait_ms=50)
    producer = AIOKafkaProducer(**aiokafka_config(env.kafka), enable_idempotence=False)
    await producer.start()

    async def send_dead_letter(*, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
        return await producer.send(env.dead, value, key=key, headers=headers)

    sink = ClickHouseSink(consumer, writer_for(env, metrics), env.scored, metrics, send_dead_letter,
                          max_rows=max_rows, max_age_s=0.2)
    consumer.subscribe([env.scored], listener=sink.listener())
    await consumer.start()
    task = asyncio.create_task(sink.run())
    try:
        if while_running is not None:
            await while_running(sink)
        deadline = time.monotonic() + timeout
        while await committed(consumer, env.scored, expected) != expected:
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, f"sink did not commit {expected} within {timeout} s"
            await asyncio.sleep(0.2)
    finally:
        await sink.stop(grace_s=2)
        await asyncio.wait_for(task, 5)
        await consumer.stop()
        await producer.stop()


async def committed(consumer: AIOKafkaConsumer, topic: str, expected: dict[int, int]) -> dict[int, int]:
    return {p: await consumer.committed(TopicPartition(topic, p)) or 0 for p in expected}


async def read_all(env: Env, topic: str, quiet_s: float = 1.5) -> list[Any]:
    """Every record of `topic`, read by assignment until nothing new arrives for `quiet_s`
    (end offsets are unreliable on the embedded broker)."""
    consumer = AIOKafkaConsumer(**aiokafka_config(env.kafka), enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=50)
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(env.kafka.topic_partitions)])
        quiet_until = time.monotonic() + quiet_s
        while time.monotonic() < quiet_until:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
                quiet_until = time.monotonic() + quiet_s
    finally:
        await consumer.stop()
    return records


def stored_counts(env: Env) -> dict[str, int]:
    return dict(env.query("SELECT event_id, count() FROM {table} GROUP BY event_id"))  # type: ignore[arg-type]


def aggregated_responses(env: Env) -> int:
    [(responses,)] = env.query("SELECT sum(responses) FROM {db}.quality_minute")
    return int(responses)


def sample(metrics: ScoringMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_two_poison_rows_among_200_are_dead_lettered_and_the_partitions_move_on(env: Env) -> None:
    env.query(f"ALTER TABLE {{table}} ADD CONSTRAINT no_poison {POISON_CONSTRAINT}")
    scored = events(env.run, 200, poison={37, 151})
    metrics = ScoringMetrics(CollectorRegistry())

    async def scenario() -> list[Any]:
        expected = await produce(env, scored)
        await run_sink(env, metrics, expected, max_rows=500, group=f"sink-{env.run}")
        return await read_all(env, env.dead)

    letters = asyncio.run(scenario())
    good = {e.event_id for e in scored} - {scored[37].event_id, scored[151].event_id}
    assert stored_counts(env) == dict.fromkeys(good, 1)
    assert aggregated_responses(env) == 198  # the materialized views saw each stored row once
    assert sorted(letter.value for letter in letters) == sorted(
        scored[i].model_dump_json().encode() for i in (37, 151))  # the original messages, unchanged
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["ksp-error-reason"] == b"clickhouse_refused"
        assert headers["ksp-clickhouse-error"] == b"VIOLATED_CONSTRAINT"
        assert b"no_poison" in headers["ksp-error-detail"]
        assert headers["ksp-source-topic"] == env.scored.encode()
        assert letter.key == ScoredEvent.model_validate_json(letter.value).event_id.encode()
    assert sample(metrics, "ksp_sink_dead_letters_total", error="VIOLATED_CONSTRAINT") == 2
    assert sample(metrics, "ksp_sink_rows_inserted_total") == 198
    assert sample(metrics, "ksp_sink_insert_failures_total", kind="refused") >= 2


def test_a_crash_after_storing_part_and_a_replay_with_other_batch_boundaries_store_each_row_once(env: Env) -> None:
    """A first sink stored the good parts of a batch, then died before dead-lettering and
    committing. Its successor re-consumes everything in batches of 16: the rows already stored
    are skipped, the rest stored once, and the poison rows dead-lettered once."""
    env.query(f"ALTER TABLE {{table}} ADD CONSTRAINT no_poison {POISON_CONSTRAINT}")
    scored = events(env.run, 120, poison={5, 70})
    metrics = ScoringMetrics(CollectorRegistry())
    crashed = {e.event_id: to_row(e, 0, i) for i, e in enumerate(scored[:90])}
    result = writer_for(env, metrics).write(crashed, should_stop=lambda: False)
    assert result.inserted == 88 and [event_id for event_id, _ in result.refused] == [
        scored[5].event_id, scored[70].event_id]

    async def scenario() -> list[Any]:
        expected = await produce(env, scored)
        await run_sink(env, metrics, expected, max_rows=16, group=f"sink-{env.run}")
        return await read_all(env, env.dead)

    letters = asyncio.run(scenario())
    assert stored_counts(env) == {e.event_id: 1 for i, e in enumerate(scored) if i not in (5, 70)}
    assert aggregated_responses(env) == 118
    assert sorted(ScoredEvent.model_validate_json(letter.value).event_id for letter in letters) == [
        scored[5].event_id, scored[70].event_id]


class ForgetfulWriter(ClickHouseWriter):
    """Our writer without its "already stored?" check, to show what the tokens alone achieve."""

    def _stored(self, client: Any, event_ids: list[str]) -> set[str]:
        return set()


def test_the_same_rows_carry_the_same_tokens_so_clickhouse_stores_a_repeated_write_once(env: Env) -> None:
    """Bisection runs in offset order and each part's token names exactly its rows: writing the
    same batch again, its rows arriving in another order, repeats every part and every token,
    and ClickHouse drops each repeated part (the parts around the poison rows included)."""
    env.query(f"ALTER TABLE {{table}} ADD CONSTRAINT no_poison {POISON_CONSTRAINT}")
    scored = events(env.run, 100, poison={13, 77})
    rows = {e.event_id: to_row(e, i % 2, i) for i, e in enumerate(scored)}
    writer = ForgetfulWriter(lambda: connect(env.clickhouse), env.table, env.scored)
    first = writer.write(rows, should_stop=lambda: False)
    again = writer.write(dict(reversed(rows.items())), should_stop=lambda: False)
    assert len(first.refused) == len(again.refused) == 2
    assert stored_counts(env) == {e.event_id: 1 for i, e in enumerate(scored) if i not in (13, 77)}
    assert aggregated_responses(env) == 98


class HalfDoneFirstInsert(ClickHouseWriter):
    """Our writer, whose first insert ClickHouse only half does, as when the server dies between
    committing the source part and a view's part: feedback_events stores the rows, the push to
    quality_minute fails for real (TOO_MANY_PARTS, ignored for that one insert), and the answer
    is lost."""

    def __init__(self, env: Env) -> None:
        super().__init__(lambda: connect(env.clickhouse), env.table, env.scored, backoff_initial_s=0.1)
        self.env = env
        self.after_half_done: tuple[int, int] | None = None  # stored, aggregated

    def _insert(self, client: Any, rows: Any) -> None:
        if self.after_half_done is not None:
            return super()._insert(client, rows)
        views = f"{self.env.clickhouse.database}.quality_minute"
        client.command(f"ALTER TABLE {views} MODIFY SETTING parts_to_throw_insert = 1")
        try:
            client.insert(self.table, list(rows), column_names=list(COLUMNS), settings={
                "insert_deduplication_token": dedup_token(self.topic, rows),
                "deduplicate_blocks_in_dependent_materialized_views": 1,
                "materialized_views_ignore_errors": 1,
            })
        finally:
            client.command(f"ALTER TABLE {views} RESET SETTING parts_to_throw_insert")
        self.after_half_done = (len(stored_counts(self.env)), aggregated_responses(self.env))
        raise ConnectionError("the server went away before answering")


def test_an_insert_left_half_done_is_completed_in_the_views_by_the_retry(env: Env) -> None:
    """The retry re-sends the same parts with the same tokens, not just the rows missing from
    feedback_events: ClickHouse drops the source part it has and adds the view part it lacks."""
    scored = events(env.run, 60, poison=set())
    rows = {e.event_id: to_row(e, 0, i) for i, e in enumerate(scored)}
    earlier = dict(list(rows.items())[:10])  # gives quality_minute a part, so the next push fails
    writer_for(env, ScoringMetrics(CollectorRegistry())).write(earlier, should_stop=lambda: False)
    writer = HalfDoneFirstInsert(env)
    result = writer.write({k: v for k, v in rows.items() if k not in earlier}, should_stop=lambda: False)
    assert writer.after_half_done == (60, 10)  # the fault really left the views behind
    assert result.inserted == 50 and result.refused == []
    assert stored_counts(env) == {e.event_id: 1 for e in scored}
    assert aggregated_responses(env) == 60


def test_a_clickhouse_outage_is_retried_and_nothing_is_lost_or_committed_meanwhile(env: Env, clickhouse) -> None:  # type: ignore[no-untyped-def]
    scored = events(env.run, 60, poison=set())
    metrics = ScoringMetrics(CollectorRegistry())
    expected: dict[int, int] = {}

    async def outage(sink: ClickHouseSink) -> None:
        try:
            deadline = time.monotonic() + 30
            while sample(metrics, "ksp_sink_insert_failures_total", kind="transient") < 3:
                assert time.monotonic() < deadline, "the sink never tried to insert while ClickHouse was down"
                await asyncio.sleep(0.1)
            assert await committed(sink.consumer, env.scored, expected) == dict.fromkeys(expected, 0)
        finally:
            await asyncio.to_thread(clickhouse.start)

    async def scenario() -> None:
        expected.update(await produce(env, scored))
        await asyncio.to_thread(clickhouse.stop)
        await run_sink(env, metrics, expected, max_rows=500, group=f"sink-{env.run}", while_running=outage)

    try:
        asyncio.run(scenario())
    finally:
        clickhouse.start()  # no-op when running: other tests share this server
    assert stored_counts(env) == {e.event_id: 1 for e in scored}
    assert sample(metrics, "ksp_sink_dead_letters_total", error="VIOLATED_CONSTRAINT") == 0
    assert sample(metrics, "ksp_sink_insert_failures_total", kind="refused") == 0


@pytest.mark.parametrize(
    ("fault", "value", "error"),
    [
        (f"ADD CONSTRAINT no_poison {POISON_CONSTRAINT}", "POISON", "VIOLATED_CONSTRAINT"),
        ("MODIFY COLUMN source LowCardinality(FixedString(4))", "too long for four bytes", "CLIENT_DATA_ERROR"),
    ],
)
def test_real_refusals_are_permanent(env: Env, fault: str, value: str, error: str) -> None:
    env.query(f"ALTER TABLE {{table}} {fault}")
    event = scored_event(env.run, 1, value)
    row = to_row(event, 0, 1)
    if "source" in fault:
        row[5] = value
    client = connect(env.clickhouse)
    try:
        with pytest.raises(Exception) as refused:
            client.insert(env.table, [row], column_names=list(COLUMNS))
    finally:
        client.close()
    why = refusal(refused.value)
    assert why is not None and why.error == error


def test_schema_errors_and_unreachable_servers_are_transient(env: Env) -> None:
    """A missing table fails every row (an operator's to fix): retried, never dead-lettered."""
    client = connect(env.clickhouse)
    try:
        with pytest.raises(Exception) as missing:
            client.insert(f"{env.clickhouse.database}.no_such_table", [[1]], column_names=["x"])
    finally:
        client.close()
    assert refusal(missing.value) is None
    with pytest.raises(Exception) as unreachable:
        connect(ClickHouseSettings(url="http://127.0.0.1:1", connect_timeout_s=1))
    assert refusal(unreachable.value) is None
