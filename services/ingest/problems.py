"""RFC 9457 problem details (`application/problem+json`) for every error the API gives.

Each problem type has a stable URI under `PROBLEM_BASE`; clients switch on `type`, not on
`title` or `detail`. Item-level errors are listed in `errors: [{index, loc, msg}]`, where
`index` is the item's position in the request (0 for a single event) and `loc` the field path.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_BASE = "https://kundensprechen.dev/problems/"
MEDIA_TYPE = "application/problem+json"

# type slug -> (status, title)
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "Malformed JSON"),
    "malformed-request": (400, "Malformed request"),
    "unauthorized": (401, "Missing or invalid API key"),
    "forbidden": (403, "API key not allowed for this touchpoint or source"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "body-too-large": (413, "Request body too large"),
    "batch-too-large": (413, "Too many items in the batch"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "validation-failed": (422, "Events failed validation"),
    "rate-limited": (429, "Rate limit exceeded"),
    "internal-error": (500, "Internal error"),
    "broker-unavailable": (503, "Kafka unavailable"),
    "buffer-full": (503, "Ingest buffer full"),
}


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


class Problem(Exception):
    """Raise anywhere in a request; the app answers it as problem+json."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        default_status, self.title = PROBLEM_TYPES[slug]
        self.slug = slug
        self.status = status or default_status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type(self.slug),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self, instance: str | None = None) -> Response:
        return Response(
            orjson.dumps(self.body(instance)),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def openapi_problem_schema() -> dict[str, Any]:
    """JSON schema of a problem document, for the OpenAPI description."""
    return {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "format": "uri", "enum": [problem_type(s) for s in PROBLEM_TYPES]},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                        "msg": {"type": "string"},
                    },
                },
            },
        },
    }
