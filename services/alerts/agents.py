"""The Faust agents: thin loops over batches; logic lives in `repartition`/`service`/`flows`.

    scored ──repartition-scored──> <group>.by-scope    ──detect-scopes────┐
                               └─> <group>.by-customer ──detect-customers─┴─> <group>.notify ──notify──> Notifier

Repartition messages carry many records each (`packing`): one message per partition and batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import faust
from faust.types import StreamT

from services.alerts.packing import Message, unpack_all
from services.alerts.repartition import InternalTopics
from services.alerts.settings import AlertsSettings

Batch = Callable[[Sequence[bytes]], Awaitable[None]]


@dataclass(frozen=True)
class Handlers:
    forward: Batch  # scored events -> repartition topics
    scopes: Callable[[Sequence[tuple[bytes, bytes]]], Awaitable[None]]  # (key, value) records
    customers: Batch
    notify: Batch
    unreadable: Callable[[Message, ValueError], None]  # a repartition message that cannot be unpacked


def _raw_topic(app: faust.App, name: str, partitions: int | None = None) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=partitions)


def register_agents(app: faust.App, settings: AlertsSettings, topics: InternalTopics,
                    handlers: Handlers) -> None:
    take = (settings.agent_batch_size, settings.agent_batch_within_s)

    @app.agent(_raw_topic(app, settings.topics.scored), name="repartition-scored")
    async def repartition_scored(stream: StreamT[bytes]) -> None:
        async for values in stream.take(*take):
            await handlers.forward(values)

    @app.agent(_raw_topic(app, topics.by_scope), name="detect-scopes")
    async def detect_scopes(stream: StreamT[bytes]) -> None:
        assert isinstance(stream, faust.Stream)  # take_events is on Stream, not on the StreamT protocol
        async for events in stream.take_events(*take):
            await handlers.scopes(unpack_all(events, handlers.unreadable))

    @app.agent(_raw_topic(app, topics.by_customer), name="detect-customers")
    async def detect_customers(stream: StreamT[bytes]) -> None:
        assert isinstance(stream, faust.Stream)
        async for events in stream.take_events(*take):
            await handlers.customers([value for _, value in unpack_all(events, handlers.unreadable)])

    @app.agent(_raw_topic(app, topics.notify, partitions=1), name="notify")
    async def notify(stream: StreamT[bytes]) -> None:
        async for values in stream.take(*take):
            await handlers.notify(values)
