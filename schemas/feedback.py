"""The feedback event a touchpoint sends (contract version 1).

A touchpoint may send any mix of standard measures (NPS, CSAT, CES, any rating on
its own scale) and a free-text comment. The event id is the idempotency key: a
retried event keeps its id and is stored once downstream.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1
MAX_COMMENT_CHARS = 5000
MAX_RESPONSES = 20
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, tzinfo=UTC)
_EVENT_ID_NAMESPACE = uuid.UUID("6b0c1d3e-5d1e-4a57-9b1e-6b7370000001")

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.\-:/ ]+$")]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w.\-:]+$")]


class Touchpoint(StrEnum):
    """Where the customer (or, for `internal`, the employee) met the service."""

    web = "web"
    app = "app"
    call_centre = "call_centre"
    store = "store"
    survey_email = "survey_email"
    chat = "chat"
    kiosk = "kiosk"
    internal = "internal"


class Metric(StrEnum):
    nps = "nps"
    csat = "csat"
    ces = "ces"
    rating = "rating"


class Scale(BaseModel):
    """The answer scale as the touchpoint asked it; kept so scores stay traceable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float = Field(description="Lowest possible answer (worst for nps/csat/rating).")
    max: float = Field(description="Highest possible answer (best for nps/csat/rating).")

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if not self.max > self.min:
            raise ValueError("scale.max must be greater than scale.min")
        return self


DEFAULT_SCALES: dict[Metric, Scale] = {
    Metric.nps: Scale(min=0, max=10),
    Metric.csat: Scale(min=1, max=5),
    Metric.ces: Scale(min=1, max=7),
}
_NPS: Final = Metric.nps
_NPS_BOUNDS: Final = (DEFAULT_SCALES[_NPS].min, DEFAULT_SCALES[_NPS].max)


class Response(BaseModel):
    """One answered question. CES is 'effort': on its scale, higher means easier
    (the CES 2.0 wording 'The company made it easy for me…'), as recommended by Gartner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric
    value: float = Field(description="The answer on `scale`.")
    scale: Scale | None = Field(
        None,
        description="Answer scale; defaults: nps 0-10, csat 1-5, ces 1-7; required for rating.",
    )

    @model_validator(mode="after")
    def _within_scale(self) -> Response:
        # Runs for every answer of every event (ingest, scoring): plain tuples and a module
        # constant, because model equality and enum attribute look-ups cost more here than
        # all of pydantic-core's own validation of the event.
        scale = self.effective_scale
        nps = self.metric is _NPS
        if nps and (scale.min, scale.max) != _NPS_BOUNDS:
            raise ValueError("nps is asked on the 0-10 scale")
        if not scale.min <= self.value <= scale.max:
            raise ValueError(f"value {self.value:g} is outside the scale {scale.min:g}..{scale.max:g}")
        if nps and self.value != int(self.value):
            raise ValueError("nps answers are whole numbers 0-10")
        return self

    @property
    def effective_scale(self) -> Scale:
        if self.scale is not None:
            return self.scale
        if self.metric in DEFAULT_SCALES:
            return DEFAULT_SCALES[self.metric]
        raise ValueError("a rating needs its scale")


class Comment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = Field(
        None, description="ISO 639-1 code if the touchpoint knows it; detected otherwise."
    )


class FeedbackEvent(BaseModel):
    """What a touchpoint sends. Unknown fields are rejected so typos surface at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: EventId | None = Field(
        None,
        description="Idempotency key. If absent, derived deterministically from the content.",
    )
    occurred_at: AwareDatetime = Field(description="When the customer gave the feedback (with zone).")
    touchpoint: Touchpoint
    source: Name = Field(description="The sending system, e.g. 'shop-frontend' or 'ivr-survey'.")
    unit: Name = Field("default", description="Organisational unit or location, e.g. 'berlin-mitte'.")
    segment: Name = Field("all", description="Customer segment, e.g. 'private' or 'business'.")
    customer_id: EventId | None = Field(
        None, description="Pseudonymous customer id; enables per-customer churn follow-up."
    )
    internal: bool = Field(False, description="True for employee ('internal customer') feedback.")
    responses: list[Response] = Field(default_factory=list, max_length=MAX_RESPONSES)
    comment: Comment | None = None

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        # ClickHouse's DateTime64 holds 1900-2299; a time far outside our era is a client bug.
        if not EARLIEST <= value <= LATEST:
            raise ValueError(f"occurred_at must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackEvent:
        if not self.responses and self.comment is None:
            raise ValueError("an event needs at least one response or a comment")
        if self.touchpoint is Touchpoint.internal and not self.internal:
            object.__setattr__(self, "internal", True)
        return self

    def with_event_id(self) -> FeedbackEvent:
        """This event with its id set (derived from the content when the sender gave none)."""
        if self.event_id is not None:
            return self
        return self.model_copy(update={"event_id": derive_event_id(self)})

    @property
    def key(self) -> bytes:
        """The Kafka key: the event id, so retries of one event land on one partition."""
        return (self.event_id or derive_event_id(self)).encode()


def derive_event_id(event: FeedbackEvent) -> str:
    """A UUIDv5 of the canonical content: the same feedback sent twice gets the same id."""
    content = event.model_dump(mode="json", exclude={"event_id"})
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, canonical.decode()))


def occurred_at_utc(event: FeedbackEvent) -> datetime:
    return event.occurred_at.astimezone(UTC)
