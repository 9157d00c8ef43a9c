"""The cases kept in a Faust table: one record per case, the fold of its events.

The cases topic is the event log (every lifecycle event, in order); this table holds where each
case stands, on every worker. It is a `GlobalTable` written from anywhere (`use_partitioner`:
API commands and timers change cases outside stream iteration) and synchronised on all workers
(`synchronize_all_active_partitions`; `recovery_buffer_size=1`, or other workers' writes wait
in Faust's buffer: docs/reliability.md). Its changelog
topic (`<consumer group>-cases-changelog`) is compacted, so a worker starting up reads one record
per case, not every event ever. A forgotten case is deleted (a tombstone).

The table's changelog callback, which Faust calls for every record it reads (at recovery and
live), feeds the decoded cases to the worker's `CaseStore`; the store keeps the indexes the
detectors and the API need. Faust's recovery reads the changelog up to the end offsets the
broker reports; see `KafkaSettings.end_offsets_exact` for the embedded broker.

Faust sends a table's changelog records without telling its caller whether the broker took
them, so every write is confirmed by reading it back from the changelog (each worker reads
its own writes too); one not read back within `READ_BACK_TIMEOUT_S` is written again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import faust
from pydantic import ValidationError

from schemas.cases import Case

log = logging.getLogger("ksp.alerts.cases")

OnCase = Callable[[Case], object]
OnGone = Callable[[str], object]
TABLE = "cases"
# longer than the producer retries a request (its request timeout, 30 s by default), so a write
# is only repeated once the producer has given up on it
READ_BACK_TIMEOUT_S = 60.0


class ChangelogRecord(Protocol):
    """What the changelog callback reads of a Faust event."""

    @property
    def key(self) -> Any: ...

    @property
    def value(self) -> Any: ...


def changelog_topic(consumer_group: str) -> str:
    """The table's changelog topic as Faust names it (created up front, compacted, so that the
    producer knows its partitions before the first case is written)."""
    return f"{consumer_group}-{TABLE}-changelog"


def decode_case(value: Any) -> Case | None:
    """A changelog value (the case's JSON, as Faust decodes the table's JSON-serialised
    values): a case, or None for a deleted one."""
    return None if value is None else Case.model_validate_json(value)


class ReadBack:
    """Case versions written to the table and not read back from its changelog yet."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[int, float]] = {}  # case id -> (events, when written)

    def wrote(self, case: Case, at: float) -> None:
        self.waiting[case.case_id] = (len(case.history), at)

    def read(self, case: Case) -> None:
        """A version as long as the one written (or longer: another worker's later change)."""
        waiting = self.waiting.get(case.case_id)
        if waiting is not None and len(case.history) >= waiting[0]:
            del self.waiting[case.case_id]

    def forget(self, case_id: str) -> None:
        self.waiting.pop(case_id, None)

    def overdue(self, now: float, after_s: float) -> list[str]:
        return [case_id for case_id, (_, at) in self.waiting.items() if now - at >= after_s]


class CaseTable:
    """`table`: the Faust table (`in_app`), or any mapping (tests); `flush` waits for the
    producer to send what was written."""

    def __init__(self, table: MutableMapping[str, Any], flush: Callable[[], Awaitable[None]],
                 on_case: OnCase, on_gone: OnGone) -> None:
        self.table = table
        self._flush = flush
        self.on_case = on_case
        self.on_gone = on_gone
        self.dirty = False
        self.read_back = ReadBack()

    @classmethod
    def in_app(cls, app: faust.App, partitions: int, on_case: OnCase, on_gone: OnGone,
               on_recovered: Callable[[], Awaitable[None]]) -> CaseTable:
        """The table `cases` in `app`; `on_recovered` runs after every recovery of it (start-up
        and each rebalance)."""
        cases = cls({}, lambda: app.producer.flush(), on_case, on_gone)
        table = app.GlobalTable(
            TABLE, key_type=str, value_type=None, partitions=partitions, use_partitioner=True,
            synchronize_all_active_partitions=True, recovery_buffer_size=1,
            on_changelog_event=cases.changed, help="Alert cases by id (JSON), one record per case.")
        if (name := table.changelog_topic.get_topic_name()) != changelog_topic(app.conf.id):
            raise RuntimeError(f"unexpected changelog topic {name}")
        table.on_recover(on_recovered)
        cases.table = table
        return cases

    def put(self, case: Case) -> None:
        # the case's JSON as a string: a third of the memory a decoded dict takes in Faust's store
        self.table[case.case_id] = case.model_dump_json()
        self.read_back.wrote(case, time.monotonic())
        self.dirty = True

    def delete(self, case_id: str) -> None:
        self.table.pop(case_id, None)
        self.read_back.forget(case_id)  # a lost delete is repeated by the next sweep anyway
        self.dirty = True

    def unconfirmed(self) -> int:
        return len(self.read_back.waiting)

    def rewrite_unconfirmed(self, current: Callable[[str], Case | None],
                            after_s: float = READ_BACK_TIMEOUT_S) -> int:
        """Write again, as they stand now, the cases whose last write was not read back within
        `after_s` (the producer gave up during a broker outage); returns how many."""
        rewritten = 0
        for case_id in self.read_back.overdue(time.monotonic(), after_s):
            case = current(case_id)
            if case is None:
                self.read_back.forget(case_id)
            else:
                self.put(case)
                rewritten += 1
        if rewritten:
            log.warning("%d case writes were not read back from the cases table within %g s: written again",
                        rewritten, after_s)
        return rewritten

    async def flush(self) -> None:
        """Wait until the producer has sent what was written (before a step's offsets commit
        or an API answer); that the broker took it is confirmed by the read-back."""
        if self.dirty:
            self.dirty = False
            await self._flush()

    async def changed(self, event: ChangelogRecord) -> None:
        """Faust's changelog callback: a record read (at recovery or live)."""
        case_id = str(event.key)
        try:
            case = decode_case(event.value)
        except (ValidationError, ValueError):
            log.error("unreadable case %s in the cases table skipped", case_id)
            return
        if case is None:
            self.read_back.forget(case_id)
            self.on_gone(case_id)
        else:
            self.read_back.read(case)
            self.on_case(case)
