"""Entry point of the alerts service: build the settings once, wire, run until a signal."""

from __future__ import annotations

from services.alerts.settings import AlertsSettings
from services.common.faust_kafka import run_worker, use_uvloop
from services.common.logging import configure_logging


def serve(settings: AlertsSettings) -> None:
    use_uvloop(settings.use_uvloop)
    log = configure_logging(settings.log, "alerts")
    from services.alerts.app import build_app

    app = build_app(settings)
    log.info("alerts worker %s starting; API on http://%s:%d/v1/alerts (docs /docs), cases topic %s, rules %s",
             settings.worker_id, settings.api_host, settings.api_port, settings.cases_topic,
             settings.rules_path or "built-in")
    # SIGTERM/SIGINT stop the worker; AlertsService.on_stop flushes what is due first.
    run_worker(app, settings.log)
