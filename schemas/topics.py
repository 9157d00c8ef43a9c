"""Kafka topic names: the only coupling between the services."""

from pydantic import BaseModel, Field


class Topics(BaseModel):
    """Topic names; override per deployment (e.g. a prefix per environment)."""

    raw: str = Field("ksp.feedback.raw", description="Feedback events as touchpoints send them.")
    scored: str = Field("ksp.feedback.scored", description="Scored events, one per raw event.")
    deadletter: str = Field(
        "ksp.feedback.deadletter",
        description="Messages that could not be parsed or validated; the reason is in headers.",
    )
    aggregates: str = Field(
        "ksp.quality.minute",
        description="Partial minute aggregates per scope (additive; keyed by scope).",
    )
    alerts: str = Field("ksp.alerts", description="Alert state changes (firing, resolved).")

    def all(self) -> list[str]:
        return [self.raw, self.scored, self.deadletter, self.aggregates, self.alerts]
