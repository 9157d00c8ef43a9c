"""Where case events live: the Kafka cases topic (the event log, replayed into an empty cases
table) and the ClickHouse history (`alerts`: alert state changes; `alert_events`: case events)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from schemas.alert import Alert
from schemas.cases import Case, CaseEvent
from services.common.kafka import aiokafka_config
from services.common.settings import KafkaSettings

log = logging.getLogger("ksp.alerts.cases")

T = TypeVar("T")


class TopicReader(Generic[T]):
    """Reads a whole topic (no consumer group: every worker reads every partition): `replay`
    up to the end offsets at start-up, then `poll` for what other workers append. Subclasses
    decode one record (`decode_record`; raising ValueError/TypeError skips it, logged)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(**aiokafka_config(kafka), enable_auto_commit=False, group_id=None,
                                         fetch_max_wait_ms=kafka.fetch_max_wait_ms,
                                         auto_offset_reset="earliest")
        self._partitions: list[TopicPartition] = []

    async def start(self, timeout_s: float = 60.0) -> None:
        await self.consumer.start()
        deadline = time.monotonic() + timeout_s
        partitions = self.consumer.partitions_for_topic(self.topic)
        while partitions is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} not found")
            await self.consumer._client.force_metadata_update()
            partitions = self.consumer.partitions_for_topic(self.topic)
            if partitions is None:
                await asyncio.sleep(0.2)
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(self._partitions)
        await self.consumer.seek_to_beginning(*self._partitions)

    async def replay(self, timeout_s: float = 60.0) -> list[T]:
        """Every event up to the end offsets as of now, partition by partition in offset order."""
        deadline = time.monotonic() + timeout_s
        end = await self.consumer.end_offsets(self._partitions)
        remaining = {tp for tp in self._partitions if end[tp] > 0}
        events: list[T] = []
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"replaying {self.topic} took longer than {timeout_s:g} s")
            events += self._decode(await self.consumer.getmany(*remaining, timeout_ms=500))
            for tp in list(remaining):
                if await self.consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return events

    async def poll(self, timeout_ms: int = 1000) -> list[T]:
        return self._decode(await self.consumer.getmany(timeout_ms=timeout_ms))

    def _decode(self, batch: dict[TopicPartition, list[Any]]) -> list[T]:
        events = []
        for tp, records in batch.items():
            for record in records:
                try:
                    events.append(self.decode_record(record))
                except (ValidationError, ValueError, TypeError):
                    log.error("unreadable record at %s:%d skipped", tp, record.offset)
        return events

    def decode_record(self, record: Any) -> T:
        raise NotImplementedError

    async def stop(self) -> None:
        await self.consumer.stop()


class CaseTopicReader(TopicReader[CaseEvent]):
    """The cases topic, replayed when the cases table is empty (app.py)."""

    def decode_record(self, record: Any) -> CaseEvent:
        return CaseEvent.model_validate_json(record.value)


async def replay_topic(kafka: KafkaSettings, topic: str, timeout_s: float = 60.0) -> list[CaseEvent]:
    """Every case event on `topic` (see CaseTopicReader.replay)."""
    reader = CaseTopicReader(kafka, topic)
    try:
        await reader.start(timeout_s)
        return await reader.replay(timeout_s)
    finally:
        await reader.stop()


def _dt(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def alert_row(alert: Alert, recorded_at: datetime) -> list[Any]:
    labels = alert.labels
    return [alert.alert_id, alert.fingerprint, alert.kind.value, alert.rule, alert.detector_version,
            alert.severity.value, alert.status.value, labels.get("touchpoint", ""), labels.get("unit", ""),
            labels.get("customer_id", ""), dict(labels), alert.summary, alert.evidence.model_dump_json(),
            _dt(alert.starts_at), _dt(alert.ends_at), _dt(recorded_at)]


ALERT_COLUMNS = ["alert_id", "fingerprint", "kind", "rule", "detector_version", "severity", "status",
                 "touchpoint", "unit", "customer_id", "labels", "summary", "evidence", "starts_at",
                 "ends_at", "recorded_at"]


def event_row(event: CaseEvent, case: Case) -> list[Any]:
    alert = case.alert
    labels = alert.labels
    return [event.case_id, event.sequence, event.action.value, _dt(event.at), event.by, event.assignee or "",
            event.outcome.value if event.outcome else "", event.note or "", case.state.value,
            alert.fingerprint, alert.kind.value, alert.rule, alert.severity.value,
            labels.get("touchpoint", ""), labels.get("unit", ""), labels.get("customer_id", ""),
            json.dumps(event.details, sort_keys=True), event.model_dump_json()]


EVENT_COLUMNS = ["case_id", "sequence", "action", "at", "by", "assignee", "outcome", "note", "state_after",
                 "fingerprint", "kind", "rule", "severity", "touchpoint", "unit", "customer_id", "details",
                 "event"]


class HistoryWriter:
    """Writes alert changes and case events to ClickHouse in the background, in batches, with
    retries; the event loop never waits for ClickHouse. Rows are keyed (alert_id+status,
    case_id+sequence) in ReplacingMergeTree tables, so a retried insert cannot duplicate."""

    def __init__(self, connect: Callable[[], Any], database: str, *, batch_age_s: float = 0.5,
                 max_backoff_s: float = 30.0, max_buffer: int = 100_000) -> None:
        self.connect = connect
        self.database = database
        self.batch_age_s = batch_age_s
        self.max_backoff_s = max_backoff_s
        self.max_buffer = max_buffer
        self.alerts: list[list[Any]] = []
        self.events: list[list[Any]] = []
        self.written = 0
        self.failures = 0
        self._client: Any = None
        self._wake = asyncio.Event()

    def alert(self, alert: Alert, at: datetime) -> None:
        self.alerts.append(alert_row(alert, at))
        self._trim()

    def case_event(self, event: CaseEvent, case: Case) -> None:
        self.events.append(event_row(event, case))
        self._trim()

    def _trim(self) -> None:
        for rows in (self.alerts, self.events):
            if len(rows) > self.max_buffer:
                log.error("ClickHouse history buffer full: %d oldest rows not written (still on the "
                          "cases topic)", len(rows) - self.max_buffer)
                del rows[: len(rows) - self.max_buffer]

    def _insert(self, alerts: list[list[Any]], events: list[list[Any]]) -> None:
        if self._client is None:
            self._client = self.connect()
        if alerts:
            self._client.insert(f"{self.database}.alerts", alerts, column_names=ALERT_COLUMNS)
        if events:
            self._client.insert(f"{self.database}.alert_events", events, column_names=EVENT_COLUMNS)

    async def flush(self) -> bool:
        if not (self.alerts or self.events):
            return True
        alerts, events = self.alerts, self.events
        self.alerts, self.events = [], []
        try:
            await asyncio.to_thread(self._insert, alerts, events)
        except Exception as exc:  # noqa: BLE001 -- kept and retried
            self.failures += 1
            log.warning("writing %d alert and %d case-event rows to ClickHouse failed (will retry): %r",
                        len(alerts), len(events), exc)
            self.alerts[:0], self.events[:0] = alerts, events
            self._client = None
            return False
        self.written += len(alerts) + len(events)
        return True

    async def run(self) -> None:
        backoff = self.batch_age_s
        while True:
            await asyncio.sleep(backoff)
            ok = await self.flush()
            backoff = self.batch_age_s if ok else min(backoff * 2, self.max_backoff_s)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
