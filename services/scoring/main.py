"""Entry point of the scoring service: build the settings once, wire, run until a signal."""

from __future__ import annotations

from services.common.faust_kafka import run_worker, use_uvloop
from services.common.logging import configure_logging
from services.scoring.settings import ScoringSettings


def serve(settings: ScoringSettings) -> None:
    use_uvloop(settings.use_uvloop)
    log = configure_logging(settings.log, "scoring")
    from services.scoring.app import build_app

    app = build_app(settings)
    log.info("scoring worker %s starting; metrics on http://%s:%d/metrics",
             settings.worker_id, settings.web_host, settings.web_port)
    run_worker(app, settings.log)
