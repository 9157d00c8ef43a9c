"""A notification group as a record: what its receiver was told, so a restarted Notifier
resolves what it notified (once) and does not notify it again as new."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.alert import Alert


class GroupSnapshot(BaseModel):
    key: str
    route_id: str
    receiver: str
    labels: dict[str, str]
    opened_at: datetime = Field(description="Start of the group's episode (part of the idempotency keys).")
    next_look: datetime
    alerts: list[Alert] = Field(description="Latest state of every alert in the group.")
    notified: bool = False
    last_sent_at: datetime | None = None
    sent_firing: list[str] = Field(default_factory=list, description="Alert ids of the last firing notification.")
    told_firing: list[str] = Field(default_factory=list, description="Alert ids the receiver knows as firing.")
    seq: int = 0
