"""What the alerts service keeps on its state topic, as pydantic records.

The state topic is compacted and keyed: the latest record of a key is the state, a tombstone
(value null) removes it. Keys:

* ``delivery/<delivery_id>``: a pending or parked delivery of the outbox (tombstone once
  delivered), with its notification and the worker that wrote it last;
* ``silence/<silence_id>``: a silence (tombstone when deleted or expired), shared by all workers;
* ``group/<group_key>``: a notification group (what its receiver was told: firing alerts,
  sequence, last send), tombstone when the group ends;
* ``digest/<name>``: the digest time a digest was last handled at (sent, or nothing to send),
  so the next notifier knows which digest is due next;
* ``detector/drop/<rule>/<scope key>``: a drop detector's learned state for one scope
  (detectors.py), written by the scope's owner periodically and when it stops or loses it;
* ``detector/surge/<rule>/<scope key>``: a scope's theme-surge windows (detectors.py), likewise;
* ``detector/churn/<rule>/<customer id>``: a customer's churn history under a churn rule
  (detectors.py), written likewise by the owner of the customer's partition.

Deliveries, groups and digest marks belong to no worker: they are the notifier's, and the notifier is
whichever worker owns the notify topic's one partition (handover.py); a worker that takes the
partition over loads them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from schemas.alert import Alert, AlertStatus
from schemas.cases import Silence
from services.alerts.delivery.outbox import Delivery
from services.alerts.notify import Notification
from services.alerts.notify.snapshot import GroupSnapshot
from services.alerts.state.detectors import ChurnSnapshot, DropSnapshot, SurgeSnapshot


class NotificationRecord(BaseModel):
    receiver: str
    group_key: str
    status: AlertStatus
    alerts: list[Alert]
    idempotency_key: str
    group_labels: dict[str, str] = Field(default_factory=dict)
    digest: bool = False
    sequence: int = 0
    repeat: bool = False
    escalation: dict[str, str] | None = None

    @classmethod
    def of(cls, n: Notification) -> NotificationRecord:
        return cls(receiver=n.receiver, group_key=n.group_key, status=n.status, alerts=list(n.alerts),
                   idempotency_key=n.idempotency_key, group_labels=dict(n.group_labels), digest=n.digest,
                   sequence=n.sequence, repeat=n.repeat,
                   escalation=dict(n.escalation) if n.escalation else None)

    def notification(self) -> Notification:
        return Notification(receiver=self.receiver, group_key=self.group_key, status=self.status,
                            alerts=tuple(self.alerts), idempotency_key=self.idempotency_key,
                            group_labels=self.group_labels, digest=self.digest, sequence=self.sequence,
                            repeat=self.repeat, escalation=self.escalation)


class DeliveryRecord(BaseModel):
    kind: Literal["delivery"] = "delivery"
    worker_id: str
    delivery_id: str
    receiver: str
    channel: str
    state: str
    attempts: int
    replays: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime | None
    accepted_at: datetime | None
    history: list[dict[str, Any]]
    notification: NotificationRecord

    @classmethod
    def of(cls, d: Delivery, worker_id: str) -> DeliveryRecord:
        return cls(worker_id=worker_id, delivery_id=d.delivery_id, receiver=d.receiver, channel=d.channel,
                   state=d.state, attempts=d.attempts, replays=d.replays, last_error=d.last_error,
                   created_at=d.created_at, updated_at=d.updated_at, accepted_at=d.accepted_at,
                   history=d.history[-20:], notification=NotificationRecord.of(d.notification))

    def delivery(self) -> Delivery:
        return Delivery(self.delivery_id, self.receiver, self.channel, self.notification.notification(),
                        self.created_at, self.accepted_at, state=self.state, attempts=self.attempts,
                        replays=self.replays, last_error=self.last_error, updated_at=self.updated_at,
                        history=list(self.history))


class SilenceRecord(BaseModel):
    kind: Literal["silence"] = "silence"
    silence: Silence


class GroupRecord(BaseModel):
    kind: Literal["group"] = "group"
    worker_id: str = Field(description="The worker that wrote it (for operators; not an owner).")
    group: GroupSnapshot


class DigestRecord(BaseModel):
    kind: Literal["digest"] = "digest"
    name: str
    handled: datetime = Field(description="The digest time last handled (sent, or nothing to send).")


StateRecord = Annotated[DeliveryRecord | SilenceRecord | GroupRecord | DigestRecord | DropSnapshot | ChurnSnapshot
                        | SurgeSnapshot, Field(discriminator="kind")]
_RECORD: TypeAdapter[StateRecord] = TypeAdapter(StateRecord)


def delivery_key(delivery_id: str) -> str:
    return f"delivery/{delivery_id}"


def silence_key(silence_id: str) -> str:
    return f"silence/{silence_id}"


def group_key(key: str) -> str:
    return f"group/{key}"


def digest_key(name: str) -> str:
    return f"digest/{name}"


def encode(record: BaseModel | None) -> bytes | None:
    return None if record is None else record.model_dump_json().encode()


def decode(value: bytes | None) -> StateRecord | None:
    """A record, or None for a tombstone (raises ValidationError when unreadable)."""
    return None if value is None else _RECORD.validate_json(value)
