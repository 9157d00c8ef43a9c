"""Survey-tool payloads -> FeedbackEvent candidates (plain dicts, validated like any event).

Each adapter maps one vendor payload to one event and documents the mapping in its module
docstring; which question is NPS/CSAT/CES/comment is configuration (settings
`typeform_mappings` / `qualtrics_mappings`, keyed by form/survey id, `"*"` as fallback).
Event ids are derived from the vendor's response id, so a redelivered webhook keeps its id.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeVar

from services.ingest.problems import Problem

_ID_OK = re.compile(r"^[\w.\-:]{1,128}$")
_ADAPTER_NAMESPACE = uuid.UUID("6b0c1d3e-5d1e-4a57-9b1e-6b7370000003")

M = TypeVar("M")


def vendor_event_id(vendor: str, response_id: str) -> str:
    candidate = f"{vendor}:{response_id}"
    return candidate if _ID_OK.match(candidate) else str(uuid.uuid5(_ADAPTER_NAMESPACE, candidate))


def pick_mapping(mappings: dict[str, M], key: object, what: str) -> M:
    mapping = (mappings.get(key) if isinstance(key, str) else None) or mappings.get("*")
    if mapping is None:
        raise Problem("validation-failed", f"No mapping is configured for {what} {key!r}.",
                      errors=[{"index": 0, "loc": [what], "msg": "no mapping configured"}])
    return mapping


def unexpected_shape(vendor: str, exc: Exception) -> Problem:
    return Problem("validation-failed", f"The {vendor} payload has an unexpected shape.",
                   errors=[{"index": 0, "loc": [], "msg": f"{exc.__class__.__name__}: {exc}"}])


def response(metric: str, value: Any, scale: tuple[float, float] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"metric": metric, "value": value}
    if scale is not None:
        r["scale"] = {"min": scale[0], "max": scale[1]}
    return r


def add_scope(event: dict[str, Any], *, unit: Any, segment: Any, customer_id: Any) -> None:
    """Set unit, segment and customer id where the survey tool supplied them."""
    if unit:
        event["unit"] = unit
    if segment:
        event["segment"] = segment
    if customer_id:
        event["customer_id"] = str(customer_id)
