"""The scoring worker (a real process, on the embedded broker and ClickHouse) publishes partial
minute aggregates per scope; for a known input, their sums per minute x scope equal the fold of
the scored events it published, and what ClickHouse's minute materialized views built from the
stored rows. Its /metrics also shows the consumer lag of the agent and the sink back at 0."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.embedded.launcher import RunScope, ServiceStack, wait_until
from schemas.aggregate import QualityAggregate
from schemas.scored import ScoredEvent
from services.common.clickhouse import connect
from services.common.kafka import aiokafka_config
from services.common.settings import ClickHouseSettings, KafkaSettings
from services.scoring.aggregates import fold
from tests.metrics import samples

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
EVENTS = 60
COMMENTS = ["Sehr freundliche Beratung, alles schnell erledigt.", "Rude staff and a long wait.",
            "Ich kündige meinen Vertrag, die Rechnung war schon wieder falsch.", "Great app, fast delivery!",
            "Niemand erreichbar an der Hotline, sehr ärgerlich."]
KEY_FIELDS = ("minute", "touchpoint", "unit", "segment", "internal")
COUNTS = [f for f, info in QualityAggregate.model_fields.items() if info.annotation is int]
SUMS = [f for f, info in QualityAggregate.model_fields.items() if info.annotation is float]
Totals = dict[tuple[Any, ...], dict[str, Any]]  # minute x scope -> summed fields, theme counters


def feedback(i: int, run: str) -> dict[str, Any]:
    """A spread of scopes, minutes and measures (some without NPS, some with only a comment)."""
    responses = [{"metric": "nps", "value": i % 11}] if i % 7 else []
    if i % 3 == 0:
        responses.append({"metric": "csat", "value": i % 5 + 1})
    if i % 4 == 0:
        responses.append({"metric": "ces", "value": i % 7 + 1})
    event = {"event_id": f"agg-{run}-{i:03d}", "occurred_at": (T0 + timedelta(seconds=11 * i)).isoformat(),
             "touchpoint": ["web", "store", "call_centre"][i % 3], "source": "aggregates-test",
             "unit": f"agg-{run}-{i % 2}", "segment": ["private", "business"][i // 2 % 2],
             "internal": i % 10 == 0, "customer_id": f"c-{i % 9}", "responses": responses}
    if i % 2 == 0 or not responses:
        event["comment"] = {"text": COMMENTS[i % len(COMMENTS)]}
    return event


def key(aggregate: QualityAggregate) -> tuple[Any, ...]:
    return tuple(getattr(aggregate, f) for f in KEY_FIELDS)


def add_up(partials: list[QualityAggregate]) -> Totals:
    """Partials of one minute x scope combined by addition, as any consumer of the topic does."""
    totals: Totals = {}
    for p in partials:
        total = totals.setdefault(key(p), {f: 0 for f in COUNTS + SUMS} | {"themes": Counter(),
                                                                         "negative_themes": Counter()})
        for f in COUNTS + SUMS:
            total[f] += getattr(p, f)
        total["themes"].update(p.themes)
        total["negative_themes"].update(p.negative_themes)
    return totals


def same(a: Totals, b: Totals) -> None:
    assert set(a) == set(b)
    for k in a:
        assert {f: a[k][f] for f in COUNTS} == {f: b[k][f] for f in COUNTS}, k
        for f in SUMS:
            assert abs(a[k][f] - b[k][f]) <= 1e-6 * max(1.0, abs(b[k][f])), (k, f, a[k][f], b[k][f])
        for f in ("themes", "negative_themes"):
            assert +Counter(a[k][f]) == +Counter(b[k][f]), (k, f)


async def produce(settings: KafkaSettings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**aiokafka_config(settings), enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value, key=k) for k, value in values])
    finally:
        await producer.stop()


async def read_all(settings: KafkaSettings, topic: str, done: Any, timeout: float = 60) -> list[bytes]:
    """Every message of `topic` (all partitions, from the start) until `done(values)` holds."""
    consumer = AIOKafkaConsumer(**aiokafka_config(settings), enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
        await consumer.seek_to_beginning()
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(values):
            assert asyncio.get_running_loop().time() < deadline, f"{len(values)} messages on {topic}"
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                values += [m.value for m in messages]
    finally:
        await consumer.stop()
    return values


def from_clickhouse(ch: ClickHouseSettings, units: list[str]) -> Totals:
    client = connect(ch)
    try:
        keys = ", ".join(KEY_FIELDS)
        quality = client.query(
            f"SELECT {keys}, " + ", ".join(f"sum({f})" for f in COUNTS + SUMS)
            + f" FROM {ch.database}.quality_minute WHERE unit IN {{units:Array(String)}} GROUP BY {keys}",
            parameters={"units": units}).result_rows
        themes = client.query(
            f"SELECT {keys}, theme, sum(mentions), sum(negative_mentions) FROM {ch.database}.theme_minute "
            f"WHERE unit IN {{units:Array(String)}} GROUP BY {keys}, theme", parameters={"units": units}).result_rows
    finally:
        client.close()
    totals: Totals = defaultdict(lambda: {"themes": Counter(),
                                                                         "negative_themes": Counter()})
    for row in quality:
        totals[_key(row)].update(zip(COUNTS + SUMS, row[5:], strict=True))
    for row in themes:  # (an insert may land between the two queries: the caller waits for all)
        totals[_key(row)]["themes"][row[5]] += row[6]
        totals[_key(row)]["negative_themes"][row[5]] += row[7]
    return dict(totals)


def _key(row: Sequence[Any]) -> tuple[Any, ...]:
    minute = row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)
    return (minute, row[1], row[2], row[3], bool(row[4]))


def complete_views(ch: ClickHouseSettings, units: list[str], published: Totals) -> Totals | None:
    """The minute views once every event and theme mention is in (inserts land one by one)."""
    totals = from_clickhouse(ch, units)
    responses = sum(t.get("responses", 0) for t in totals.values())
    return totals if responses == EVENTS and mentions(totals) == mentions(published) else None


def mentions(totals: Totals) -> int:
    return sum(sum(t["themes"].values()) for t in totals.values())


def lag_samples(metrics_url: str, group: str) -> list[float]:
    text = httpx.get(metrics_url, timeout=5).text
    return [value for labels, value in samples(text, "ksp_scoring_consumer_lag_messages") if labels.get("group") == group]


def lag_is_zero(metrics_url: str, group: str) -> bool:
    return set(lag_samples(metrics_url, group)) == {0.0}


def test_published_aggregates_equal_the_fold_and_the_minute_views(kafka, clickhouse, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scope = RunScope.new("test-agg")
    run, topics = scope.run, scope.topics
    kafka_settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)
    ch = ClickHouseSettings(url=clickhouse.url)
    stack = ServiceStack(kafka.bootstrap_servers, clickhouse.url, tmp_path, scope=scope)
    # publishing aggregates is on by default; the test pins it whatever the calling shell says
    scoring = stack.add("scoring", env={"KSP_LAG_INTERVAL_S": "0.5", "KSP_PUBLISH_AGGREGATES": "true"})
    groups = {"agent": scope.group("scoring"), "sink": scope.group("sink")}
    processes = stack.processes
    events = [feedback(i, run) for i in range(EVENTS)]
    units = sorted({e["unit"] for e in events})
    raw = [(e["event_id"].encode(), json.dumps(e).encode()) for e in events] + [(b"bad", b"{not json")]
    stack.prepare()
    scoring.process.start()
    try:
        asyncio.run(produce(kafka_settings, topics.raw, raw))
        partials = [QualityAggregate.model_validate_json(v) for v in asyncio.run(read_all(
            kafka_settings, topics.aggregates,
            lambda vs: sum(QualityAggregate.model_validate_json(v).responses for v in vs) >= EVENTS))]
        scored = [ScoredEvent.model_validate_json(v) for v in asyncio.run(read_all(
            kafka_settings, topics.scored, lambda vs: len(vs) >= EVENTS))]
        published = add_up(partials)

        assert sum(t["responses"] for t in published.values()) == EVENTS  # each event counted once
        assert sorted(s.event_id for s in scored) == sorted(e["event_id"] for e in events)
        same(published, add_up(fold(scored)))
        stored = wait_until(partial(complete_views, ch, units, published), timeout=60, what="the minute views",
                            processes=processes)
        same(published, stored)
        assert len({k[0] for k in published}) >= 10 and len(published) > 20  # many minutes and scopes

        # Everything is consumed and committed: the lag gauges read 0 for every partition.
        metrics = f"{scoring.url}/metrics"
        for group in groups.values():
            wait_until(partial(lag_samples, metrics, group), timeout=30, what=f"a lag gauge for {group}",
                       processes=processes)
            wait_until(partial(lag_is_zero, metrics, group), timeout=30, what=f"lag 0 for {group}",
                       processes=processes)
    finally:
        stack.stop()
