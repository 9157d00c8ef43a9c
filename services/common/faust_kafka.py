"""Faust's aiokafka transport with a configurable fetch wait.

Faust creates its consumers with `fetch_max_wait_ms=1500` fixed. Apache Kafka answers a fetch
as soon as data arrives, so that only bounds idle polling; the embedded Tansu broker holds
the fetch for the full wait, which adds up to 1.5 s per hop. Services register this
transport under the scheme `ksp-kafka://` and set the wait from `KafkaSettings`. Its consumer
also drains fetched batches without Faust's per-message tasks (see `faust_consumer`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Transport

from services.common.faust_consumer import BatchDrainConsumer
from services.common.kafka import faust_credentials, track_topics
from services.common.partitioner import partition_for
from services.common.settings import KafkaSettings, LogSettings

SCHEME = "ksp-kafka"
DEFAULT_FETCH_MAX_WAIT_MS = 500


class TunedConsumerThread(AIOKafkaConsumerThread):
    def _create_consumer(self, loop: asyncio.AbstractEventLoop) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_consumer(loop)
        # aiokafka hands this to its fetcher in start(), which Faust calls after creating it.
        consumer._fetch_max_wait_ms = getattr(self.app, "ksp_fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        return consumer


class TunedConsumer(BatchDrainConsumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)


def kafka_partitioner(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """aiokafka's DefaultPartitioner (Kafka's murmur2 choice; random without a key) with our
    murmur2, which reads 4-byte words instead of bytes: half the cost per keyed send.
    Faust takes it as `producer_partitioner`."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[partition_for(key, len(all_partitions))]


class TunedTransport(Transport):
    Consumer = TunedConsumer


def register() -> None:
    TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:TunedTransport")


def broker_urls(bootstrap_servers: str) -> list[str]:
    register()
    return [f"{SCHEME}://{server}" for server in bootstrap_servers.split(",")]


def apply_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> Any:
    app.ksp_fetch_max_wait_ms = fetch_max_wait_ms  # type: ignore[attr-defined]
    return app


def base_config(kafka: KafkaSettings, *, app_id: str, worker_id: str) -> dict[str, Any]:
    """The Faust settings every service's app shares: broker, security, group timings."""
    return {
        "id": app_id,
        "broker": broker_urls(kafka.bootstrap_servers),
        "broker_credentials": faust_credentials(kafka),
        "broker_session_timeout": kafka.session_timeout_s,
        "broker_heartbeat_interval": kafka.heartbeat_interval_s,
        "broker_request_timeout": kafka.request_timeout_s,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "topic_partitions": kafka.topic_partitions,
        "store": "memory://",
        "datadir": f"/tmp/ksp-faust-{worker_id}",
    }


def new_app(config: dict[str, Any], kafka: KafkaSettings) -> faust.App:
    return apply_fetch_wait(faust.App(**config), kafka.fetch_max_wait_ms)  # type: ignore[no-any-return]


def run_worker(app: faust.App, log: LogSettings) -> None:
    """Run until SIGTERM/SIGINT. Faust's own level stays at the service's: at "warn" Faust
    sets the root logger to DEBUG, which is very slow."""
    faust.Worker(app, loglevel=log.level, quiet=True).execute_from_commandline()


def use_uvloop(enabled: bool) -> None:
    if enabled:
        import mode.loop

        mode.loop.use("uvloop")


def direct_sender(app: faust.App, topic: str) -> Callable[..., Awaitable[Any]]:
    """`send(key=, value=, headers=)` -> the delivery future, straight through the app's producer:
    values are bytes already, and skipping Topic.send's per-message future and serializer
    bookkeeping saves tens of µs per message."""

    async def send(*, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                   partition: int | None = None) -> Any:
        producer = await app.maybe_start_producer()  # Topic.send does this too; cheap once started
        return await producer.send(topic, key, value, partition, None, headers)

    return send


def producer_config(linger_ms: int, max_batch_bytes: int) -> dict[str, Any]:
    """Faust producer settings that matter for throughput: linger so sends share requests."""
    return {"producer_linger_ms": linger_ms, "producer_max_batch_size": max_batch_bytes,
            "producer_partitioner": kafka_partitioner}


def track_output_topics(app: faust.App, topics: Sequence[str]) -> None:
    """At start, keep every topic the app writes in its producer's metadata (`track_topics`):
    otherwise the first send to a topic created after the producer started can strand records
    lingering for the others until they expire."""

    async def track() -> None:
        producer = await app.maybe_start_producer()
        await track_topics(producer._producer.client, topics)  # Faust keeps the aiokafka producer private

    app.task(track)
