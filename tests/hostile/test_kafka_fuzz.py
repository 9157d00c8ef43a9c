"""Hostile input on the Kafka-native path: messages produced straight to the raw topic that a
running scoring worker (real process, session broker and ClickHouse) consumes.

Random bytes, wrong schema versions, huge comments and messages, invalid UTF-8, deeply nested
JSON, tombstones, and valid-but-odd events. Passes when the worker stays alive and ready, every
invalid message is in the dead-letter topic (found by its `ksp-source-partition/offset`
headers) with the expected `ksp-error-reason` and its original bytes, and every valid event is
stored in `feedback_events` exactly once. Bounded: ~150 messages, one worker, ≤ 60 s waits.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas.feedback import FeedbackEvent, derive_event_id
from tests.chaos.harness import Stack, _query, http_ok, stored_counts

pytestmark = pytest.mark.timeout(180)

NOT_PARSED = {"not_utf8", "not_json", "invalid_event"}


@dataclass
class Sent:
    name: str
    value: bytes | None
    expect: str | set[str]  # "stored", or the allowed dead-letter reasons
    event_id: str | None = None
    partition: int = -1
    offset: int = -1


@pytest.fixture(scope="module")
def worker(kafka, clickhouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    stack = Stack(kafka.bootstrap_servers, clickhouse.url, tmp_path_factory.mktemp("fuzz"),
                  services=("scoring",), extra_env={"KSP_SINK_BATCH_AGE_S": "0.2"})
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def _event(unit: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": f"{unit}-{uuid.uuid4().hex[:12]}",
        "occurred_at": "2026-11-27T10:00:00+01:00",
        "touchpoint": "web",
        "source": "fuzz",
        "unit": unit,
        "responses": [{"metric": "nps", "value": 8}],
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def _valid(name: str, doc: dict[str, Any], raw: bytes | None = None) -> Sent:
    event = FeedbackEvent.model_validate(doc)  # the contract accepts it: it must be stored
    event_id = event.event_id or derive_event_id(event)
    return Sent(name, raw if raw is not None else json.dumps(doc).encode(), "stored", event_id)


def _allowed(item: Sent) -> set[str]:
    return item.expect if isinstance(item.expect, set) else {item.expect}


def corpus(unit: str, rng: random.Random) -> list[Sent]:
    sent: list[Sent] = []
    # --- garbage
    for i in range(40):
        sent.append(Sent(f"random-bytes-{i}", rng.randbytes(rng.randint(1, 3000)), NOT_PARSED))
    for i in range(10):  # random printable text: valid UTF-8, mostly not JSON
        text = "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 500)))
        sent.append(Sent(f"random-text-{i}", text.encode(), NOT_PARSED))
    sent.append(Sent("empty", b"", "not_json"))
    sent.append(Sent("tombstone", None, "not_json"))
    sent.append(Sent("whitespace", b" \n\t ", "not_json"))
    for top in (b"null", b"true", b"42", b'"a string"', b"[]", b"[1,2,3]", b"{}"):
        sent.append(Sent(f"json-{top[:8].decode()}", top, "invalid_event"))
    # --- encodings
    good = json.dumps(_event(unit, comment={"text": "PLACEHOLDER"})).encode()
    sent.append(Sent("latin1-comment", good.replace(b"PLACEHOLDER", "Grüße, schön".encode("latin-1")), "not_utf8"))
    sent.append(Sent("lone-continuation-byte", good.replace(b"PLACEHOLDER", b"ok \x80 ok"), "not_utf8"))
    sent.append(Sent("overlong-utf8", good.replace(b"PLACEHOLDER", b"\xc0\xaf"), "not_utf8"))
    sent.append(Sent("utf16", json.dumps(_event(unit)).encode("utf-16"), "not_utf8"))
    bom = _event(unit)
    sent.append(Sent("bom-utf8", b"\xef\xbb\xbf" + json.dumps(bom).encode(), {"not_json", "stored"}, bom["event_id"]))
    sent.append(Sent("lone-surrogate-escape", good.replace(b"PLACEHOLDER", b"a\\ud800b"), "not_json"))
    # --- schema versions and shapes
    for version in (0, 2, 99, "1", None, -1, 1.5):
        doc = _event(unit)
        doc["schema_version"] = version
        sent.append(Sent(f"schema-version-{version!r}", json.dumps(doc).encode(), "invalid_event"))
    sent.append(Sent("unknown-field", json.dumps(_event(unit, colour="blue")).encode(), "invalid_event"))
    sent.append(Sent("no-touchpoint", json.dumps(_event(unit, touchpoint=None)).encode(), "invalid_event"))
    sent.append(Sent("naive-datetime", json.dumps(_event(unit, occurred_at="2026-11-27T10:00:00")).encode(),
                     "invalid_event"))
    sent.append(Sent("nps-11", json.dumps(_event(unit, responses=[{"metric": "nps", "value": 11}])).encode(),
                     "invalid_event"))
    sent.append(Sent("nps-fraction", json.dumps(_event(unit, responses=[{"metric": "nps", "value": 7.5}])).encode(),
                     "invalid_event"))
    sent.append(Sent("rating-no-scale", json.dumps(_event(unit, responses=[{"metric": "rating", "value": 3}])).encode(),
                     "invalid_event"))
    sent.append(Sent("nothing-said", json.dumps(_event(unit, responses=[])).encode(), "invalid_event"))
    sent.append(Sent("21-responses", json.dumps(_event(unit, responses=[{"metric": "nps", "value": 5}] * 21)).encode(),
                     "invalid_event"))
    sent.append(Sent("nan", json.dumps(_event(unit)).replace('"value": 8', '"value": NaN').encode(),
                     {"not_json", "invalid_event"}))
    sent.append(Sent("huge-number", json.dumps(_event(unit)).replace('"value": 8', '"value": 1e400').encode(),
                     {"not_json", "invalid_event"}))
    sent.append(Sent("event-id-injection", json.dumps(_event(unit, event_id="x'); DROP TABLE feedback_events; --")).encode(),
                     "invalid_event"))
    # --- sizes
    sent.append(Sent("comment-5001", json.dumps(_event(unit, comment={"text": "x" * 5001})).encode(), "invalid_event"))
    sent.append(Sent("message-300k", json.dumps(_event(unit, comment={"text": "y" * 300_000})).encode(), "too_large"))
    sent.append(Sent("padding-300k", json.dumps(_event(unit)).encode() + b" " * 300_000, "too_large"))
    # --- nesting
    for depth in (100, 1_000, 100_000):
        sent.append(Sent(f"nested-array-{depth}", b"[" * depth + b"]" * depth, {"not_json", "invalid_event"}))
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        sent.append(Sent(f"nested-object-{depth}", nested, {"not_json", "invalid_event", "too_large"}))
    deep_comment = json.dumps(_event(unit)).encode()[:-1] + b',"comment":{"text":' + b"[" * 5000 + b"]" * 5000 + b"}}"
    sent.append(Sent("nested-in-comment", deep_comment, {"not_json", "invalid_event"}))
    # --- valid but odd: all must be stored
    odd_texts = {
        "emoji": "Toll 👍🏽👨‍👩‍👧 aber 💩 Lieferung",
        "rtl": "الخدمة ممتازة شكرا",
        "zero-width": "gut\u200b\u200c\u200d\u2060schlecht",
        "combining": "Z̵̡̢a̷l̸g̶o̴ ̷t̵e̷x̵t̸",
        "nul-char": "before\u0000after",
        "control-chars": "tab\tnewline\nbell\x07esc\x1b",
        "sql-ish": "'; DROP TABLE kundensprechen.feedback_events; --",
        "max-comment": "ä" * 5000,
        "cjk": "服务很好，但是等待时间太长了",
    }
    for name, text in odd_texts.items():
        sent.append(_valid(f"odd-{name}", _event(unit, comment={"text": text})))
    sent.append(_valid("odd-no-event-id", _event(unit, event_id=None, customer_id=f"c-{uuid.uuid4().hex[:6]}")))
    sent.append(_valid("odd-max-event-id", _event(unit, event_id=(unit + "-" + "9" * 128)[:128])))
    sent.append(_valid("odd-plus14", _event(unit, occurred_at="2026-11-28T09:00:00+14:00")))
    sent.append(_valid("odd-minus12", _event(unit, occurred_at="2026-11-27T09:00:00-12:00")))
    sent.append(_valid("odd-20-responses", _event(unit, responses=[{"metric": "csat", "value": 1 + i % 5}
                                                                   for i in range(20)])))
    sent.append(_valid("odd-negative-scale", _event(unit, responses=[
        {"metric": "rating", "value": -5, "scale": {"min": -5, "max": 5}}])))
    sent.append(_valid("odd-tiny-scale", _event(unit, responses=[
        {"metric": "rating", "value": 1e-9, "scale": {"min": 0, "max": 2e-9}}])))
    sent.append(_valid("odd-internal", _event(unit, touchpoint="internal", internal=False)))
    sent.append(_valid("odd-unicode-segment", _event(unit, segment="Groß-kunden/Zürich")))
    spaced = _event(unit)
    sent.append(_valid("odd-whitespace-json", spaced,
                       raw=b"\n\n  " + json.dumps(spaced, indent=4).encode() + b"  \n"))
    # the same event id twice, different partitions/offsets: stored once
    dup = _event(unit)
    sent.append(_valid("odd-duplicate-1", dup))
    sent.append(_valid("odd-duplicate-2", dup))
    rng.shuffle(sent)
    return sent


def _produce(bootstrap: str, topic: str, sent: list[Sent], rng: random.Random) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024,
                             linger_ms=5)
    try:
        futures = []
        for item in sent:
            key = None if rng.random() < 0.2 else (item.event_id or item.name).encode()
            futures.append(producer.send(topic, value=item.value, key=key))
        producer.flush(30)
        for item, future in zip(sent, futures, strict=True):
            metadata = future.get(timeout=30)
            item.partition, item.offset = metadata.partition, metadata.offset
    finally:
        producer.close(5)


def _dead_letters(bootstrap: str, topic: str, expected: int, timeout: float) -> dict[tuple[int, int], Any]:
    """Dead letters by (source partition, source offset); manual assignment, no group."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=200,
                             max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
    found: dict[tuple[int, int], Any] = {}
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(found) < expected:
            for records in consumer.poll(timeout_ms=300).values():
                for record in records:
                    headers = {k: v for k, v in record.headers}
                    source = (int(headers.get("ksp-source-partition", b"-1")),
                              int(headers.get("ksp-source-offset", b"-1")))
                    found[source] = (record, headers)
        return found
    finally:
        consumer.close()


@pytest.mark.kafka
def test_fuzzed_raw_messages(worker: Stack, kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(20261128)
    unit = f"fuzz-{uuid.uuid4().hex[:8]}"
    sent = corpus(unit, rng)
    _produce(kafka.bootstrap_servers, worker.topics.raw, sent, rng)
    invalid = [s for s in sent if "stored" not in _allowed(s)]
    valid_ids = {s.event_id for s in sent if "stored" in _allowed(s) and s.event_id}
    must_store = {s.event_id for s in sent if _allowed(s) == {"stored"}}
    started = time.monotonic()
    letters = _dead_letters(kafka.bootstrap_servers, worker.topics.deadletter, len(invalid), timeout=60)
    letters_s = time.monotonic() - started
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not must_store <= set(stored_counts(clickhouse.url, unit)):
        time.sleep(0.5)
    stored_s = time.monotonic() - started
    time.sleep(1.0)
    counts = stored_counts(clickhouse.url, unit)

    problems: list[str] = []
    scoring = worker.processes["scoring"]
    if not scoring.alive():
        problems.append(f"scoring worker died\n{worker.log_tail('scoring')}")
    elif not http_ok(f"{worker.scoring_url}/readyz"):
        problems.append("scoring worker is not ready")
    for item in sent:
        letter = letters.get((item.partition, item.offset))
        allowed = item.expect if isinstance(item.expect, set) else {item.expect}
        stored = counts.get(item.event_id, 0) if item.event_id else 0
        if letter is None:
            if "stored" not in allowed:
                problems.append(f"{item.name} (p{item.partition}@{item.offset}): no dead letter")
            elif stored != 1:
                problems.append(f"{item.name}: valid event stored {stored} times (expected once)")
            continue
        record, headers = letter
        reason = headers.get("ksp-error-reason", b"").decode()
        if reason not in allowed:
            problems.append(f"{item.name}: dead-letter reason {reason!r}, expected {sorted(allowed)} "
                            f"({headers.get('ksp-error-detail', b'')[:200]!r})")
        if stored:
            problems.append(f"{item.name}: dead-lettered ({reason}) and stored {stored} times")
        if headers.get("ksp-source-topic") != worker.topics.raw.encode():
            problems.append(f"{item.name}: ksp-source-topic {headers.get('ksp-source-topic')!r}")
        if (record.value or b"") != (item.value or b""):
            problems.append(f"{item.name}: dead letter does not carry the original bytes")
    unexpected = set(counts) - valid_ids
    if unexpected:
        problems.append(f"rows stored that were not valid events: {sorted(unexpected)[:5]}")
    print(f"{len(sent)} messages: {len(valid_ids)} valid, {len(invalid)} invalid, "
          f"{len(letters)} dead letters after {letters_s:.1f} s, {len(counts)} stored after {stored_s:.1f} s")
    assert not problems, "\n".join(problems)


@pytest.mark.kafka
def test_out_of_range_occurred_at_is_dead_lettered(worker: Stack, kafka, clickhouse) -> None:  # type: ignore[no-untyped-def]
    unit = f"fuzz-time-{uuid.uuid4().hex[:8]}"
    stamps = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2500-01-01T00:00:00Z",
              "1800-01-01T00:00:00Z"]
    sent = [Sent(f"occurred-{s}", json.dumps(_event(unit, occurred_at=s)).encode(), "invalid_event")
            for s in stamps]
    for item in sent:
        item.event_id = json.loads(item.value or b"{}")["event_id"]
    _produce(kafka.bootstrap_servers, worker.topics.raw, sent, random.Random(1))
    letters = _dead_letters(kafka.bootstrap_servers, worker.topics.deadletter, 10_000, timeout=5)
    time.sleep(2)
    stored = _query(clickhouse.url, "SELECT event_id, toString(occurred_at) FROM kundensprechen.feedback_events "
                    "WHERE unit = {unit:String}", unit=unit)
    assert worker.processes["scoring"].alive()
    assert stored == [], f"stored with a wrong time: {stored}"
    for item in sent:
        assert (item.partition, item.offset) in letters, f"{item.name}: no dead letter"


@pytest.mark.kafka
def test_scoring_metrics_endpoint_answers(worker: Stack) -> None:
    import httpx

    response = httpx.get(f"{worker.scoring_url}/metrics", timeout=5)
    assert response.status_code == 200, response.status_code
    assert "ksp_sink_rows_inserted_total" in response.text
