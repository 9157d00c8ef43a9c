"""Detector state moves with its partition on a rebalance (handover.py), on the real
broker's state topic: the group's rebalance is played by calling the handover's Faust signal
handlers with the partitions a rebalance would revoke and assign. The worker that loses a scope
writes its learned state; the worker that gains the scope's partition takes exactly the scopes
of that partition over (their events wait for it) and detects a drop as the first would have."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

from faust.types import TP

from schemas.scored import ScoredEvent
from services.alerts.flows import AlertEvaluator
from services.alerts.handover import Handover
from services.alerts.repartition import InternalTopics, scope_key
from services.alerts.service import AlertsRuntime
from services.alerts.settings import AlertsSettings
from services.alerts.state.log import StateTopicReader, latest
from services.alerts.state.records import StateRecord
from services.common.partitioner import partition_for
from tests.alerts.test_detector_restart import Worker, start
from tests.alerts.test_flows import (
    CHURN_RULES,
    DROP_RULES,
    DROPPED,
    IN_CONTROL,
    T0,
    nps_stream,
    rules_yaml,
    scored,
)
from tests.alerts.test_restart import new_settings

PARTITIONS = 8
UNIT = ("touchpoint", "unit")
UNIT_SEGMENT = ("touchpoint", "unit", "segment")


async def replay(settings: AlertsSettings) -> list[StateRecord]:
    reader = StateTopicReader(settings.kafka, settings.state_topic_name())
    try:
        await reader.start(30)
        return latest(await reader.replay(30))
    finally:
        await reader.stop()


def records(events: list[ScoredEvent], levels: tuple[tuple[str, ...], ...]) -> list[tuple[bytes, bytes]]:
    """What the by-scope agent receives: each event once per scope level, keyed by its scope."""
    return [(scope_key(level, e), e.model_dump_json().encode()) for e in events for level in levels]


def reference(learn: list[ScoredEvent], dropped: list[ScoredEvent]) -> int:
    """After how many drop responses a worker that kept the unit's scope detects the drop."""
    ev = AlertEvaluator(rules_yaml(DROP_RULES))
    for e in learn:
        ev.on_scope(e, UNIT, e.event.occurred_at)
    return next(i for i, e in enumerate(dropped, 1) if ev.on_scope(e, UNIT, e.event.occurred_at))


async def joined(settings: AlertsSettings, topics: InternalTopics, assigned: set[TP],
                 rules_text: str = DROP_RULES) -> tuple[Worker, Handover]:
    """A worker of the group; here its first assignment arrives before the start-up restore."""
    handovers = []

    async def join(runtime: AlertsRuntime) -> None:
        handovers.append(Handover(runtime, topics, {"scope": PARTITIONS, "customer": PARTITIONS},
                                  lambda: replay(settings)))
        await handovers[0].on_assigned(assigned)

    return await start(settings, join, rules_text), handovers[0]


def test_a_scope_takes_its_learned_baseline_to_the_worker_that_gains_its_partition(kafka) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    learn, dropped = nps_stream(rng, IN_CONTROL, 1000, 0), nps_stream(rng, DROPPED, 300, 1000)
    expected = reference(learn, dropped)
    assert expected < 200  # a worker learning afresh would still be warming up (400)
    settings = new_settings(kafka)
    topics = InternalTopics.of(f"group-{settings.cases_topic}")
    every = {TP(topics.by_scope, p) for p in range(PARTITIONS)}
    unit_p = partition_for(scope_key(UNIT, learn[0]), PARTITIONS)
    segment_p = partition_for(scope_key(UNIT_SEGMENT, learn[0]), PARTITIONS)
    assert unit_p != segment_p  # the unit's two scope levels live on different partitions

    async def scenario() -> Any:
        first, first_h = await joined(settings, topics, every)
        await first.runtime.handle_scopes(records(learn, (UNIT, UNIT_SEGMENT)))
        await first_h.on_revoked(every)  # eager rebalance: everything revoked, state written
        await first_h.on_assigned(every - {TP(topics.by_scope, unit_p)})  # the unit's scope moves
        assert [names for names, _ in first.runtime.evaluator._drop[0].scopes] == [UNIT_SEGMENT]

        second, second_h = await joined(settings, topics, set())
        assert second.restored.detectors == 0  # nothing of its own yet
        await second_h.on_assigned({TP(topics.by_scope, unit_p)})
        assert not second.runtime.detectors_ready.is_set()  # its events wait for the state
        await asyncio.wait_for(second.runtime.detectors_ready.wait(), 30)
        # the gained partition's scope only (the other level's record is on the topic too)
        assert second.runtime.metrics.detector_restores._value.get() == 1
        for i, record in enumerate(records(dropped, (UNIT,)), 1):
            await second.runtime.handle_scopes([record])
            if second.runtime.evaluator.firing():
                assert i == expected
                break
        else:
            raise AssertionError("the drop was not detected after the handover")
        await first.stop()
        await second.stop()

    asyncio.run(scenario())


def test_a_customers_churn_history_goes_to_the_worker_that_gains_its_partition(kafka) -> None:  # type: ignore[no-untyped-def]
    """Two negative experiences on the first worker, the third after the customer's by-customer
    partition moved: "repeated negative experiences" fires on the second worker."""
    settings = new_settings(kafka)
    topics = InternalTopics.of(f"group-{settings.cases_topic}")
    every = {TP(topics.by_customer, p) for p in range(PARTITIONS)}
    moved = TP(topics.by_customer, partition_for(b"c-9", PARTITIONS))
    experiences = [scored(1, T0, nps=4, customer="c-9", touchpoint="web"),
                   scored(2, T0 + timedelta(days=3), csat=1, customer="c-9", touchpoint="call_centre"),
                   scored(3, T0 + timedelta(days=9), customer="c-9", touchpoint="store", complaint=True)]
    encoded = [e.model_dump_json().encode() for e in experiences]

    async def scenario() -> Any:
        first, first_h = await joined(settings, topics, every, CHURN_RULES)
        await first.runtime.handle_customers(encoded[:2])
        assert first.runtime.evaluator.firing() == []
        await first_h.on_revoked(every)  # eager rebalance: everything revoked, histories written
        await first_h.on_assigned(every - {moved})
        assert first.runtime.evaluator.stats()["customers"] == 0  # c-9 went with its partition

        second, second_h = await joined(settings, topics, set(), CHURN_RULES)
        await second_h.on_assigned({moved})
        await asyncio.wait_for(second.runtime.detectors_ready.wait(), 30)
        await second.runtime.handle_customers(encoded[2:])
        [alert] = second.runtime.evaluator.firing()
        assert alert.labels["signal"] == "repeated" and alert.evidence.example_event_ids == ["e-1", "e-2", "e-3"]
        await first.stop()
        await second.stop()

    asyncio.run(scenario())
