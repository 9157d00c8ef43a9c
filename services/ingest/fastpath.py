"""`POST /v1/feedback` answered ahead of FastAPI's whole stack.

The route stays declared in FastAPI (OpenAPI, docs; with OpenTelemetry on, every request takes
FastAPI's own path), but its requests are answered by `FastRoute`, which `FastPathAPI` calls
before FastAPI and Starlette run their middleware chain (server errors, telemetry, body limit,
request metrics, exception handlers, router, dependency solving): for a single event those
layers cost about as much CPU as validating the event.

Behaviour is the same as through that chain: the same endpoint function runs; problems go to
the handler the app registers for them; any other exception goes to the app's server-error
handler, whose answer is sent before the exception is raised again for the server to log (as
Starlette's `ServerErrorMiddleware` does); the request is counted in the same metrics as by
`RequestMetrics`, labelled by the route template.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from services.ingest.metrics import IngestMetrics, observe_request
from services.ingest.problems import Problem

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class FastRoute:
    """Answers one (method, path) with `endpoint`, as the app's middleware chain would."""

    def __init__(self, route: BaseRoute, endpoint: Endpoint, on_problem: ErrorHandler, on_error: ErrorHandler,
                 metrics: IngestMetrics, method: str = "POST") -> None:
        self.route = route
        self.path: str = getattr(route, "path", "")
        self.method = method
        self.endpoint = endpoint
        self.on_problem = on_problem
        self.on_error = on_error
        self.metrics = metrics

    def matches(self, scope: Scope) -> bool:
        return scope["type"] == "http" and scope["path"] == self.path and scope["method"] == self.method

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # as the router would set it
        request = Request(scope, receive)
        started = time.perf_counter()
        response: Response | None = None
        self.metrics.inflight_requests.inc()
        try:
            response = await self._answer(request)
            await response(scope, receive, send)
        except Exception as exc:
            if response is None:  # nothing sent yet
                await (await self.on_error(request, exc))(scope, receive, send)
            raise
        finally:
            self.metrics.inflight_requests.dec()
            status = 500 if response is None else response.status_code
            observe_request(self.metrics, self.path, self.method, status, started)

    async def _answer(self, request: Request) -> Response:
        try:
            return await self.endpoint(request)
        except Problem as exc:
            return await self.on_problem(request, exc)


class FastPathAPI(FastAPI):
    """FastAPI, with the requests of `fast_route` (when set) answered before its middleware stack."""

    fast_route: FastRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_route
        if fast is not None and fast.matches(scope):
            scope["app"] = self  # as Starlette sets it: `request.app`
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
