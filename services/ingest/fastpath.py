"""`POST /v1/feedback` straight to its endpoint, past FastAPI's router.

The route stays declared in FastAPI (OpenAPI, docs, any method or path variant), but its
requests are answered by this pure-ASGI middleware: FastAPI's exception middleware, exit
stack, route matching, request/response wrapping and dependency solving cost about as much
CPU as everything ingest does for a single event. Behaviour is the same because the same
endpoint function runs and problems go to the same handler the app registers for them;
other exceptions propagate to the app's server-error handler as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.problems import Problem

Endpoint = Callable[[Request], Awaitable[Response]]
ProblemHandler = Callable[[Request, Exception], Awaitable[Response]]


class FastRoute:
    """Pure ASGI middleware answering one (method, path) with `endpoint`."""

    def __init__(self, app: ASGIApp, route: BaseRoute, endpoint: Endpoint, on_problem: ProblemHandler,
                 method: str = "POST") -> None:
        self.app = app
        self.route = route
        self.path = getattr(route, "path", "")
        self.method = method
        self.endpoint = endpoint
        self.on_problem = on_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # as the router would set it (metrics label by route template)
        request = Request(scope, receive)
        try:
            response = await self.endpoint(request)
        except Problem as exc:
            response = await self.on_problem(request, exc)
        await response(scope, receive, send)
