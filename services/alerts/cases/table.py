"""The cases kept in a Faust table: one record per case, the fold of its events.

The cases topic is the event log (every lifecycle event, in order); this table holds where each
case stands, on every worker. It is a `GlobalTable` written from anywhere (`use_partitioner`:
API commands and timers change cases outside stream iteration) and synchronised on all workers
(`synchronize_all_active_partitions`, the fix of faust-streaming/faust#283). Its changelog
topic (`<consumer group>-cases-changelog`) is compacted, so a worker starting up reads one record
per case, not every event ever. A forgotten case is deleted (a tombstone).

The table's changelog callback, which Faust calls for every record it reads (at recovery and
live), feeds the decoded cases to the worker's `CaseStore`; the store keeps the indexes the
detectors and the API need. Faust's recovery reads the changelog up to the end offsets the
broker reports; see `KafkaSettings.end_offsets_exact` for the embedded broker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import EventT
from pydantic import ValidationError

from schemas.cases import Case

log = logging.getLogger("ksp.alerts.cases")

OnCase = Callable[[Case], object]
OnGone = Callable[[str], None]
TABLE = "cases"


def changelog_topic(consumer_group: str) -> str:
    """The table's changelog topic as Faust names it (created up front, compacted, so that the
    producer knows its partitions before the first case is written)."""
    return f"{consumer_group}-{TABLE}-changelog"


def decode_case(value: Any) -> Case | None:
    """A changelog value (JSON, as Faust serialises a table's values): a case, or None for a
    deleted one."""
    if value is None:
        return None
    return Case.model_validate_json(value) if isinstance(value, str | bytes) else Case.model_validate(value)


class CaseTable:
    def __init__(self, app: faust.App, partitions: int, on_case: OnCase, on_gone: OnGone) -> None:
        self.app = app
        self.on_case = on_case
        self.on_gone = on_gone
        self.dirty = False
        self.table = app.GlobalTable(
            TABLE, key_type=str, value_type=None, partitions=partitions, use_partitioner=True,
            synchronize_all_active_partitions=True, recovery_buffer_size=1,
            on_changelog_event=self._changed, help="Alert cases by id (JSON), one record per case.")
        if (name := self.table.changelog_topic.get_topic_name()) != changelog_topic(app.conf.id):
            raise RuntimeError(f"unexpected changelog topic {name}")

    def put(self, case: Case) -> None:
        self.table[case.case_id] = case.model_dump(mode="json")
        self.dirty = True

    def delete(self, case_id: str) -> None:
        self.table.pop(case_id, None)
        self.dirty = True

    async def flush(self) -> None:
        """Wait until what was written is on the changelog (before a step's offsets commit or
        an API answer), like the events on the cases topic."""
        if self.dirty:
            self.dirty = False
            await self.app.producer.flush()

    def on_recovered(self, callback: Callable[[], Awaitable[None]]) -> None:
        """`callback` after every recovery of the table (start-up and each rebalance)."""
        self.table.on_recover(callback)

    async def _changed(self, event: EventT) -> None:
        case_id = str(event.key)
        try:
            case = decode_case(event.value)
        except (ValidationError, ValueError):
            log.error("unreadable case %s in the cases table skipped", case_id)
            return
        if case is None:
            self.on_gone(case_id)
        else:
            self.on_case(case)
