"""The scoring entry point creates the topics it sends to before the agent starts: the agent
waits for every acknowledgement, and a send to a missing topic is never acknowledged."""

from __future__ import annotations

import logging
import uuid

from kafka.admin import KafkaAdminClient

from schemas.topics import Topics
from services.common.settings import KafkaSettings
from services.scoring.main import ensure_output_topics
from services.scoring.settings import ScoringSettings


def _existing(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _settings(bootstrap: str, publish_aggregates: bool) -> ScoringSettings:
    run = uuid.uuid4().hex[:8]
    topics = Topics(raw=f"main-{run}.raw", scored=f"main-{run}.scored",
                    deadletter=f"main-{run}.deadletter", aggregates=f"main-{run}.aggregates",
                    alerts=f"main-{run}.alerts")
    return ScoringSettings(kafka=KafkaSettings(bootstrap_servers=bootstrap), topics=topics,
                           publish_aggregates=publish_aggregates)


def test_missing_input_and_output_topics_are_created(kafka) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(kafka.bootstrap_servers, publish_aggregates=True)
    t = settings.topics
    assert not {t.raw, t.scored, t.deadletter, t.aggregates} & _existing(kafka.bootstrap_servers)
    ensure_output_topics(settings, logging.getLogger("test"))
    assert {t.raw, t.scored, t.deadletter, t.aggregates} <= _existing(kafka.bootstrap_servers)
    assert t.alerts not in _existing(kafka.bootstrap_servers)  # not the scoring worker's topic


def test_the_aggregates_topic_is_left_alone_when_not_published(kafka) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(kafka.bootstrap_servers, publish_aggregates=False)
    ensure_output_topics(settings, logging.getLogger("test"))
    existing = _existing(kafka.bootstrap_servers)
    assert settings.topics.scored in existing and settings.topics.aggregates not in existing
