"""Consumer lag of the scoring agent and the sink, per topic partition, read from the clients.

Lag = high watermark - committed offset: the messages the group has not yet committed as done.
The high watermark is the one each fetch response carries (aiokafka's `highwater(tp)`), not a
ListOffsets request, which the embedded Tansu broker does not answer reliably. So the value is
as fresh as the consumer's last fetch of the partition: a consumer that stops fetching (its
buffers are full, or it is wedged) keeps reporting the high watermark it last saw, while a
Kafka exporter (`kafka_consumergroup_lag`) asks the brokers and sees new messages at once.
A partition is left out until its high watermark and committed offset are both known.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, Protocol

import faust
from aiokafka import AIOKafkaConsumer

from services.scoring.metrics import ScoringMetrics

log = logging.getLogger("ksp.scoring.lag")


class Offsets(NamedTuple):
    highwater: int | None  # next offset to be written, as of the last fetch response
    committed: int | None  # next offset the group will consume after a restart


Snapshot = Mapping[tuple[str, int], Offsets]  # (topic, partition) -> offsets


def lag(offsets: Offsets) -> int | None:
    """Messages not yet committed; None while either end is unknown (-1: no commit yet)."""
    if offsets.highwater is None or offsets.committed is None or offsets.committed < 0:
        return None
    return max(0, offsets.highwater - offsets.committed)


def lags(snapshot: Snapshot) -> dict[tuple[str, int], int]:
    return {tp: value for tp, offsets in snapshot.items() if (value := lag(offsets)) is not None}


class FaustConsumer(Protocol):
    def assignment(self) -> Any: ...
    def highwater(self, tp: Any) -> int | None: ...


def faust_snapshot(consumer: FaustConsumer, topics: set[str]) -> Snapshot:
    """The agent's partitions. Faust commits from its own consumer thread and keeps what it
    committed (Kafka's next-offset convention, seeded from the group at assignment) in
    `_committed_offset`; reading it avoids an OffsetFetch round trip per partition."""
    committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    return {(tp.topic, tp.partition): Offsets(_highwater(consumer, tp), committed.get(tp))
            for tp in consumer.assignment() if tp.topic in topics}


async def aiokafka_snapshot(consumer: AIOKafkaConsumer) -> Snapshot:
    """A plain aiokafka consumer's partitions; `committed` asks the group coordinator."""
    snapshot = {}
    for tp in consumer.assignment():
        snapshot[(tp.topic, tp.partition)] = Offsets(consumer.highwater(tp), await consumer.committed(tp))
    return snapshot


def _highwater(consumer: FaustConsumer, tp: Any) -> int | None:
    try:
        return consumer.highwater(tp)
    except Exception:  # noqa: BLE001 - the consumer is (re)starting: no value this round
        return None


Source = Callable[[], Awaitable[Snapshot]]


class LagReporter:
    """Sets `ksp_scoring_consumer_lag_messages{group,topic,partition}` from each group's source,
    and drops the series of partitions the group no longer has here (after a rebalance)."""

    def __init__(self, metrics: ScoringMetrics, sources: Mapping[str, Source], timeout_s: float = 5.0) -> None:
        self.gauge = metrics.consumer_lag
        self.sources = sources
        self.timeout_s = timeout_s  # the committed-offset request may wait out a rebalance
        self.reported: dict[str, set[tuple[str, int]]] = {}

    async def update(self) -> None:
        for group, source in self.sources.items():
            try:
                self._report(group, lags(await asyncio.wait_for(source(), self.timeout_s)))
            except Exception as exc:  # noqa: BLE001 - a metric must not take the worker down
                log.debug("no lag for %s this round: %r", group, exc)

    def _report(self, group: str, values: Mapping[tuple[str, int], int]) -> None:
        for topic, partition in self.reported.get(group, set()) - set(values):
            self.gauge.remove(group, topic, str(partition))
        for (topic, partition), value in values.items():
            self.gauge.labels(group, topic, str(partition)).set(value)
        self.reported[group] = set(values)


def register_lag_reporter(app: faust.App, metrics: ScoringMetrics, interval_s: float, raw_topic: str,
                          sink_group: str | None, sink_consumer: Callable[[], AIOKafkaConsumer | None]) -> None:
    """Report the agent's lag (its group is the app id) and the sink's every `interval_s`."""

    async def agent() -> Snapshot:
        return faust_snapshot(app.consumer, {raw_topic})

    async def sink() -> Snapshot:
        consumer = sink_consumer()
        return await aiokafka_snapshot(consumer) if consumer is not None else {}

    sources: dict[str, Source] = {app.conf.id: agent}
    if sink_group:
        sources[sink_group] = sink
    reporter = LagReporter(metrics, sources, timeout_s=interval_s)
    app.timer(interval_s)(reporter.update)
