"""Drop-detector state across a restart, on the real broker: a worker learns a scope's baseline,
stops (or crashes after a periodic snapshot) and a new worker starts on the same topics. A drop
right after the restart is detected after exactly as many responses as without the restart,
while a worker without the snapshot is still learning then."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from schemas.scored import ScoredEvent
from services.alerts.app import replay_state
from services.alerts.delivery.outbox import Outbox
from services.alerts.flows import AlertEvaluator
from services.alerts.metrics import AlertsMetrics
from services.alerts.notify import Notifier
from services.alerts.service import AlertsRuntime
from services.alerts.settings import AlertsSettings
from services.alerts.state.durable import Restored
from services.alerts.state.log import StateLog
from services.common.kafka import aiokafka_config
from tests.alerts.test_flows import DROP_RULES, DROPPED, IN_CONTROL, nps_stream, rules_yaml
from tests.alerts.test_restart import Clock, new_settings

Join = Callable[[AlertsRuntime], Awaitable[None]]


@dataclass
class Worker:
    runtime: AlertsRuntime
    restored: Restored
    producer: AIOKafkaProducer

    async def feed(self, events: Sequence[ScoredEvent]) -> None:
        for i in range(0, len(events), 100):
            await self.runtime.handle([e.model_dump_json().encode() for e in events[i:i + 100]])

    async def responses_to_detect(self, events: Sequence[ScoredEvent]) -> int | None:
        """Feeds `events` one by one; how many it took until a drop alert fired."""
        for i, e in enumerate(events, 1):
            await self.runtime.handle([e.model_dump_json().encode()])
            if self.runtime.evaluator.firing():
                return i
        return None

    async def stop(self) -> None:
        """A graceful stop: what is due, the detector snapshots and the state records written."""
        await self.runtime.flush(5)
        await self.crash()

    async def crash(self) -> None:
        await self.runtime.outbox.close()
        await self.producer.stop()


async def start(settings: AlertsSettings, join: Join | None = None, rules_text: str = DROP_RULES) -> Worker:
    """What AlertsService.on_start does for detector state: replay the state topic, restore
    (after `join`, which plays the group's first assignment)."""
    producer = AIOKafkaProducer(**aiokafka_config(settings.kafka), enable_idempotence=False)
    await producer.start()

    def publisher(topic: str) -> Any:
        async def send(*, key: bytes, value: bytes | None, headers: Any = None) -> Any:
            return await producer.send(topic, value, key=key)  # the acknowledgement
        return send

    rules = rules_yaml(rules_text)
    runtime = AlertsRuntime(settings, evaluator=AlertEvaluator(rules), notifier=Notifier(rules.routing),
                            outbox=Outbox({}), metrics=AlertsMetrics(CollectorRegistry()),
                            publish_alert=publisher(settings.topics.alerts),
                            publish_case=publisher(settings.cases_topic),
                            state_log=StateLog(publisher(settings.state_topic_name())), clock=Clock())
    if join is not None:
        await join(runtime)
    records = await replay_state(settings)
    restored = runtime.restore(records)
    runtime.started.set()
    return Worker(runtime, restored, producer)


def streams() -> tuple[list[ScoredEvent], list[ScoredEvent], int]:
    """A baseline to learn, a drop after it, and after how many drop responses a worker that
    never restarted detects it."""
    rng = random.Random(11)
    learn, dropped = nps_stream(rng, IN_CONTROL, 1000, 0), nps_stream(rng, DROPPED, 300, 1000)
    reference = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        reference.on_scored(e, e.event.occurred_at)
    for i, e in enumerate(dropped, 1):
        if reference.on_scored(e, e.event.occurred_at):
            return learn, dropped, i
    raise AssertionError("the reference never detected the drop")


def test_a_drop_right_after_a_restart_is_detected_as_without_the_restart(kafka) -> None:  # type: ignore[no-untyped-def]
    learn, dropped, expected = streams()
    assert expected < 200  # well before a fresh worker's warm-up (400) could end

    async def scenario() -> None:
        settings = new_settings(kafka)
        first = await start(settings)
        await first.feed(learn)
        await first.stop()
        second = await start(settings)
        assert second.restored.detectors == 2  # both scope levels of the unit
        assert await second.responses_to_detect(dropped) == expected
        await second.stop()

        fresh = await start(new_settings(kafka))  # the same, without a snapshot to restore
        assert fresh.restored.detectors == 0
        assert await fresh.responses_to_detect(dropped[:expected * 2]) is None
        await fresh.stop()

    asyncio.run(scenario())


def test_after_a_crash_the_last_periodic_snapshot_is_restored(kafka) -> None:  # type: ignore[no-untyped-def]
    learn, dropped, expected = streams()

    async def scenario() -> None:
        settings = new_settings(kafka, detector_snapshot_interval_s=0.01)
        first = await start(settings)
        await first.feed(learn)
        await asyncio.sleep(0.02)
        await first.runtime.tick()  # the periodic snapshot
        assert first.runtime.metrics.detector_snapshots._value.get() == 2
        assert await first.runtime.state.flush(10)  # it reached the broker before the crash
        await first.crash()  # no graceful stop: nothing more is written
        second = await start(settings)
        assert second.restored.detectors == 2
        assert await second.responses_to_detect(dropped) == expected
        await second.stop()

    asyncio.run(scenario())
