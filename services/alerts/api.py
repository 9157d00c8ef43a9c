"""The alerts HTTP API: thin views over the handler's state."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.alerts.service import AlertHandler


def register_api(app: faust.App, handler: AlertHandler, registry: CollectorRegistry) -> None:
    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            assigned = app.consumer.assignment() if app.consumer else set()
            return self.json({"ready": bool(assigned), "partitions": len(assigned)},
                             status=200 if assigned else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    @app.page("/v1/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            firing = [a.model_dump(mode="json") for a in handler.state.firing.values()]
            parked = [{"channel": c, "alert_id": a.alert_id, "error": e} for c, a, e in handler.parked]
            return self.json({"firing": firing, "parked": parked})
