"""The Kafka edge of `ksp deadletters`: read the dead-letter topic once to its end, and send
re-driven messages. kafka-python (synchronous, as the CLI), configured as every service is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.common.kafka import security_config
from services.common.settings import KafkaSettings
from services.ops.deadletters import DeadLetterRecord, RedriveMessage, from_message

CLIENT_ID = "ksp-deadletters"


class TopicNotFound(LookupError):
    pass


def read_dead_letters(kafka: KafkaSettings, topic: str, *, idle_s: float = 10.0) -> Iterator[DeadLetterRecord]:
    """Every message of `topic` from the beginning up to its end as the broker first reports it
    (letters that arrive meanwhile, e.g. from a re-drive that failed again, are not read). No
    consumer group and no commits: reading changes nothing. Stops after `idle_s` without any
    message should a broker never report the partitions' ends."""
    consumer = KafkaConsumer(**security_config(kafka), client_id=CLIENT_ID, enable_auto_commit=False,
                             auto_offset_reset="earliest",
                             request_timeout_ms=max(int(kafka.request_timeout_s * 1000), 31_000))
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise TopicNotFound(f"topic {topic} does not exist (or has no partitions)")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        yield from _drain(consumer, assigned, idle_s)
    finally:
        consumer.close()


def _drain(consumer: KafkaConsumer, assigned: list[TopicPartition], idle_s: float) -> Iterator[DeadLetterRecord]:
    ends: dict[TopicPartition, int] = {}
    quiet_until = time.monotonic() + idle_s
    while not _at_ends(consumer, assigned, ends):
        batch = consumer.poll(timeout_ms=500)
        _note_ends(consumer, assigned, ends)
        if batch:
            quiet_until = time.monotonic() + idle_s
        elif time.monotonic() > quiet_until:
            return
        for tp in sorted(batch, key=lambda tp: tp.partition):
            yield from (_record(m) for m in batch[tp] if tp not in ends or m.offset < ends[tp])


def _note_ends(consumer: KafkaConsumer, assigned: list[TopicPartition], ends: dict[TopicPartition, int]) -> None:
    """Remember each partition's high watermark from its first fetch response (ListOffsets is
    not reliable on every broker; fetch responses carry the watermark anyway)."""
    for tp in assigned:
        if tp not in ends and (highwater := consumer.highwater(tp)) is not None:
            ends[tp] = highwater


def _at_ends(consumer: KafkaConsumer, assigned: list[TopicPartition], ends: dict[TopicPartition, int]) -> bool:
    return len(ends) == len(assigned) and all(consumer.position(tp) >= ends[tp] for tp in assigned)


def _record(message: Any) -> DeadLetterRecord:
    return from_message(topic=message.topic, partition=message.partition, offset=message.offset,
                        timestamp_ms=message.timestamp, key=message.key, value=message.value,
                        headers=message.headers or [])


class Redriver:
    """Sends re-driven messages, acknowledged by all in-sync replicas, and reports failures."""

    def __init__(self, kafka: KafkaSettings) -> None:
        # Not idempotent: some brokers (the embedded one) refuse it, and a duplicate is harmless
        # here (the sink stores each event id once).
        self._producer = KafkaProducer(**security_config(kafka), client_id=CLIENT_ID, acks="all",
                                       enable_idempotence=False, retries=5, linger_ms=5)
        self._pending: list[Any] = []

    def send(self, message: RedriveMessage) -> None:
        self._pending.append(self._producer.send(message.topic, message.value, key=message.key,
                                                 headers=message.headers))

    def flush(self, timeout_s: float = 60.0) -> list[Exception]:
        """Wait for every send since the last flush; the errors of those that failed."""
        self._producer.flush(timeout=timeout_s)
        pending, self._pending = self._pending, []
        return [future.exception or TimeoutError("not acknowledged in time")
                for future in pending if not future.succeeded()]

    def close(self) -> None:
        self._producer.close(timeout=10)
