"""The parked deliveries as every worker sees them on the state topic.

Deliveries belong to the notifying worker (handover.py): only its outbox sends and replays
them. The others follow the state topic anyway (for silences), so they keep this read-only
view of what is parked and who parked it, and the API answers the same list on any worker."""

from __future__ import annotations

from services.alerts.delivery.outbox import PARKED, Delivery
from services.alerts.state.records import DeliveryRecord, StateRecord, delivery_key


class ParkedView:
    def __init__(self) -> None:
        self._records: dict[str, DeliveryRecord] = {}

    def apply(self, key: str, record: StateRecord | None) -> None:
        """A record of the state topic; anything but a parked delivery removes its key."""
        if not key.startswith(delivery_key("")):
            return
        if isinstance(record, DeliveryRecord) and record.state == PARKED:
            self._records[key] = record
        else:
            self._records.pop(key, None)

    def deliveries(self) -> list[Delivery]:
        return sorted((r.delivery() for r in self._records.values()), key=lambda d: d.created_at)

    def parked_by(self, delivery_id: str) -> str | None:
        """The worker that parked `delivery_id` (the notifier then), if it is parked."""
        record = self._records.get(delivery_key(delivery_id))
        return None if record is None else record.worker_id
