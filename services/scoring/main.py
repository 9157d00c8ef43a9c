"""Entry point of the scoring service: build the settings once, wire, run until a signal."""

from __future__ import annotations

from services.common.logging import configure_logging
from services.scoring.settings import ScoringSettings


def serve(settings: ScoringSettings) -> None:
    import faust

    if settings.use_uvloop:
        import mode.loop

        mode.loop.use("uvloop")
    log = configure_logging(settings.log, "scoring")
    from services.scoring.app import build_app

    app = build_app(settings)
    log.info("scoring worker %s starting; metrics on http://%s:%d/metrics",
             settings.worker_id, settings.web_host, settings.web_port)
    # Faust's own log level: at "warn" it sets the root logger to DEBUG, which is very slow.
    worker = faust.Worker(app, loglevel=settings.log.level, quiet=True)
    worker.execute_from_commandline()
