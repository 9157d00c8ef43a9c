"""Shared bench plumbing: embedded broker/ClickHouse, service processes, events, counting, stats."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from deploy.embedded.kafka import EmbeddedKafka
from deploy.embedded.launcher import PORT_SETTING, Service, ServiceStack, http_ok
from deploy.embedded.process import ManagedProcess, free_port

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4  # Tansu auto-creates topics with 4 partitions; `ksp topics` also uses 4


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return float(s[k])


def unique(prefix: str) -> str:
    return f"bench.{prefix}.{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- events

def make_events(n: int, seed: int = 7, source: str = "bench") -> list[dict[str, Any]]:
    """Valid FeedbackEvents like the demo's (de/en comments, NPS, some CSAT), unique ids."""
    from services.simulator.traffic import Incident, make_event

    rng = random.Random(seed)
    now = datetime.now(UTC)
    quiet = Incident(starts_after_s=1e12)  # no incident: no churn alerts from the background load
    out = []
    for _ in range(n):
        event = make_event(rng, now, 0.0, quiet)
        event["event_id"] = str(uuid.uuid4())
        event["source"] = source
        out.append(event)
    return out


def encoded_events(n: int, seed: int = 7, source: str = "bench") -> list[bytes]:
    return [orjson.dumps(e) for e in make_events(n, seed, source)]


def raw_payloads(n: int, size: int = 300) -> list[bytes]:
    base = os.urandom(size // 2).hex().encode()[:size]
    return [base[:-8] + f"{i:08d}".encode()[-8:] for i in range(n)]


# ---------------------------------------------------------------- infrastructure

@dataclass
class Infra:
    workdir: Path
    kafka: EmbeddedKafka
    clickhouse: Any = None  # EmbeddedClickHouse
    children: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def clickhouse_url(self) -> str:
        return self.clickhouse.url if self.clickhouse else "http://127.0.0.1:1"

    @cached_property
    def stack(self) -> ServiceStack:
        """The services' launcher on this broker and ClickHouse (created once ClickHouse is known)."""
        return ServiceStack(self.bootstrap, self.clickhouse_url, self.workdir, env={"KSP_LOG__LEVEL": "warning"})

    def env(self, **extra: str) -> dict[str, str]:
        return self.stack.env(**extra)

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, env=env, log_path=self.workdir / f"{name}.log", cwd=REPO)
        proc.start()
        self.children[name] = proc
        return proc

    def start_service(self, name: str, command: str | None = None, **env: str) -> Service:
        """`ksp <command>` started (not awaited) on this infrastructure, with its port and URL."""
        return self._start(self.stack.add(name, command, env=env))

    def service(self, name: str, command: str, **env: str) -> ManagedProcess:
        """Like `start_service`, on the port the caller put in `env` (if any)."""
        port = env.get(PORT_SETTING[command])
        return self._start(self.stack.add(name, command, env=env, port=int(port) if port else None)).process

    def _start(self, service: Service) -> Service:
        service.process.start()
        self.children[service.name] = service.process
        return service

    def stop_child(self, name: str, grace: float = 10.0) -> None:
        proc = self.children.pop(name, None)
        if proc is not None:
            proc.stop(grace)

    def pids(self) -> dict[str, int]:
        out = {"broker": self.kafka.process.pid}
        if self.clickhouse is not None:
            out["clickhouse"] = self.clickhouse.pid
        out.update({name: p.pid for name, p in self.children.items()})
        return {k: v for k, v in out.items() if v}


@contextmanager
def infra(name: str, *, clickhouse: bool = False, keep: Path | None = None) -> Iterator[Infra]:
    """A fresh broker (and ClickHouse with the migrations applied) for one bench section."""
    with tempfile.TemporaryDirectory(prefix=f"ksp-bench-{name}-") as tmp:
        workdir = Path(tmp)
        kafka = EmbeddedKafka(log_path=workdir / "kafka.log").start()
        result = Infra(workdir, kafka)
        try:
            if clickhouse:
                from deploy.embedded.clickhouse import EmbeddedClickHouse
                from services.common.clickhouse import migrate
                from services.common.settings import ClickHouseSettings

                result.clickhouse = EmbeddedClickHouse(data_dir=workdir / "clickhouse", port=free_port())
                result.clickhouse.start(timeout=60)
                migrate(ClickHouseSettings(url=result.clickhouse.url))
            yield result
        finally:
            for child in list(result.children):
                result.stop_child(child, grace=10)
            if result.clickhouse is not None:
                result.clickhouse.stop()
            kafka.stop()
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                for log in workdir.glob("*.log"):
                    (keep / f"{name}-{log.name}").write_bytes(log.read_bytes()[-200_000:])


def create_topics(bootstrap: str, names: list[str]) -> None:
    from services.common.kafka import ensure_topics
    from services.common.settings import KafkaSettings

    ensure_topics(KafkaSettings(bootstrap_servers=bootstrap, topic_partitions=PARTITIONS), names)


def wait_http(url: str, timeout: float, proc: ManagedProcess) -> None:
    """Until `url` answers 200; fails early when `proc` exits."""
    proc.wait_ready(lambda: http_ok(url), timeout=timeout)


# ---------------------------------------------------------------- Kafka helpers (aiokafka)

async def produce_all(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes] | None = None,
                      timestamp_ms: int | None = None) -> float:
    """Produce `values` (acks=all, not idempotent: Tansu); returns seconds until all acknowledged."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=5, max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        await producer.partitions_for(topic)
        started = time.perf_counter()
        futures = []
        for i, value in enumerate(values):
            futures.append(await producer.send(topic, value, key=keys[i] if keys else None, timestamp_ms=timestamp_ms))
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def count_topic(bootstrap: str, topic: str, expected: int, timeout: float,
                      on_first: Callable[[], None] | None = None,
                      value_hook: Callable[[bytes, float], None] | None = None) -> tuple[int, float | None, float | None, int]:
    """Consume `topic` from the beginning with manual assignment (not end offsets: they are wrong on
    Tansu) until `expected` messages or `timeout`; returns (count, monotonic time of the first poll with
    messages, of the last, messages in that first poll)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    count, first, last, first_count = 0, None, None, 0
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while count < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.monotonic()
            got = sum(len(m) for m in batches.values())
            if got:
                if first is None:
                    first, first_count = now, got
                    if on_first:
                        on_first()
                last = now
                count += got
                if value_hook:
                    for messages in batches.values():
                        for m in messages:
                            value_hook(m.value, now)
        return count, first, last, first_count
    finally:
        await consumer.stop()
