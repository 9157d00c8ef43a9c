"""The Faust agent: a thin loop over batches of raw feedback; the logic lives in `pipeline`."""

from __future__ import annotations

import faust
from faust.types import StreamT

from services.scoring.pipeline import ScoringPipeline
from services.scoring.settings import ScoringSettings


def register_agents(app: faust.App, settings: ScoringSettings, pipeline: ScoringPipeline) -> None:
    raw = app.topic(settings.topics.raw, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")

    @app.agent(raw, name="score-feedback", concurrency=settings.agent_concurrency)
    async def score_feedback(stream: StreamT[bytes]) -> None:
        assert isinstance(stream, faust.Stream)  # take_events is on Stream, not on the StreamT protocol
        async for events in stream.take_events(settings.agent_batch_size, settings.agent_batch_within_s):
            await pipeline.handle(events)
