"""Raw broker baseline: how fast plain clients produce and consume ~300-byte messages on the
embedded broker (Tansu). This is the physical limit the services are measured against."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.infra import PARTITIONS, count_topic, create_topics, produce_all, raw_payloads, unique


def kafka_python_produce(bootstrap: str, topic: str, values: list[bytes]) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    try:
        producer.partitions_for(topic)
        started = time.perf_counter()
        for value in values:
            producer.send(topic, value)
        producer.flush(timeout=120)
        return time.perf_counter() - started
    finally:
        producer.close(timeout=10)


def kafka_python_consume(bootstrap: str, topic: str, expected: int, timeout: float = 120) -> tuple[int, float]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                             fetch_max_bytes=16 * 1024 * 1024)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        count = 0
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while count < expected and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=200, max_records=10_000).values():
                count += len(messages)
        return count, time.perf_counter() - started
    finally:
        consumer.close()


def aiokafka_consume(bootstrap: str, topic: str, expected: int, timeout: float = 120) -> tuple[int, float]:
    started = time.perf_counter()
    count, *_ = asyncio.run(count_topic(bootstrap, topic, expected, timeout))
    return count, time.perf_counter() - started


def run_once(bootstrap: str, n: int) -> dict[str, Any]:
    """One measurement of the four rates (msgs/s), each on its own fresh topic."""
    values = raw_payloads(n, 300)
    t_kp, t_ak = unique("base-kp"), unique("base-ak")
    create_topics(bootstrap, [t_kp, t_ak])
    out: dict[str, Any] = {"messages": n, "message_bytes": len(values[0])}
    seconds = kafka_python_produce(bootstrap, t_kp, values)
    out["kafka_python_produce_msgs_s"] = n / seconds
    count, seconds = kafka_python_consume(bootstrap, t_kp, n)
    out["kafka_python_consume_msgs_s"] = count / seconds
    out["kafka_python_consumed"] = count
    seconds = asyncio.run(produce_all(bootstrap, t_ak, values))
    out["aiokafka_produce_msgs_s"] = n / seconds
    count, seconds = aiokafka_consume(bootstrap, t_ak, n)
    out["aiokafka_consume_msgs_s"] = count / seconds
    out["aiokafka_consumed"] = count
    return out
