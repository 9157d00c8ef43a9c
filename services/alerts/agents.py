"""The Faust agent: a thin loop over batches of scored events; logic lives in `service`/`flows`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import faust
from faust.types import StreamT

from services.alerts.settings import AlertsSettings


def register_agents(app: faust.App, settings: AlertsSettings,
                    handle: Callable[[Sequence[bytes]], Awaitable[None]]) -> None:
    scored = app.topic(settings.topics.scored, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")

    @app.agent(scored, name="evaluate-scored")
    async def evaluate_scored(stream: StreamT[bytes]) -> None:
        async for values in stream.take(settings.agent_batch_size, settings.agent_batch_within_s):
            await handle(values)
