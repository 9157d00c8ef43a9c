"""Entry point of the scoring service: build the settings once, wire, run until a signal."""

from __future__ import annotations

import logging

from services.common.faust_kafka import run_worker, use_uvloop
from services.common.kafka import ensure_topics
from services.common.logging import configure_logging
from services.scoring.settings import ScoringSettings


def serve(settings: ScoringSettings) -> None:
    use_uvloop(settings.use_uvloop)
    log = configure_logging(settings.log, "scoring")
    ensure_output_topics(settings, log)
    from services.scoring.app import build_app

    app = build_app(settings)
    log.info("scoring worker %s starting; metrics on http://%s:%d/metrics",
             settings.worker_id, settings.web_host, settings.web_port)
    run_worker(app, settings.log)


def ensure_output_topics(settings: ScoringSettings, log: logging.Logger) -> None:
    """Create the topics the worker reads and writes if they are missing. A send to a missing
    topic is never acknowledged by the embedded broker (nor by Kafka with auto-creation off),
    and the agent waits for every acknowledgement before it moves on: it would stall."""
    if created := ensure_topics(settings.kafka, [settings.topics.raw, *settings.output_topics()]):
        log.info("created missing topics %s", ", ".join(created))
