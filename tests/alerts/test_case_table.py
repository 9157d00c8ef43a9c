"""The cases table's bookkeeping (services/alerts/cases/table.py) on a plain mapping: what the
changelog callback hands to the worker's store, and how a write that never came back from the
changelog is written again. The Faust table itself, on the real broker, is covered end to end
(tests/e2e/test_alerts_e2e.py, test_alerts_scaleout.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from schemas.cases import Case, CaseAction
from services.alerts.cases import CaseStore, apply
from services.alerts.cases.table import CaseTable
from tests.alerts.test_cases import T0, opened_store


@dataclass
class ChangelogRecord:
    key: Any
    value: Any


class Flushes:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1


def table_and_store() -> tuple[CaseTable, CaseStore, dict[str, Any], Flushes]:
    store = CaseStore()
    storage: dict[str, Any] = {}
    flushes = Flushes()
    return CaseTable(storage, flushes, on_case=store.adopt, on_gone=store.forget), store, storage, flushes


def record_of(case: Case) -> ChangelogRecord:
    return ChangelogRecord(case.case_id, case.model_dump_json())  # as Faust decodes the table's values


def commented(case: Case, note: str) -> Case:
    return apply(case, CaseStore.next_event(case, CaseAction.commented, T0, note=note))


def a_case() -> Case:
    owner, case_id = opened_store("c-table")
    return owner.get(case_id)


def test_a_case_read_from_the_changelog_reaches_the_store_and_a_deleted_one_leaves_it() -> None:
    table, store, _, _ = table_and_store()
    case = a_case()
    asyncio.run(table.changed(record_of(case)))
    assert store.get(case.case_id) == case and store.latest_for(case.alert.fingerprint) == case
    asyncio.run(table.changed(ChangelogRecord(case.case_id, None)))
    assert case.case_id not in store.cases


def test_an_unreadable_changelog_record_is_skipped() -> None:
    table, store, _, _ = table_and_store()
    asyncio.run(table.changed(ChangelogRecord("c-x", '{"case_id": "c-x", "state": "nonsense"}')))
    assert store.cases == {}


def test_a_write_is_stored_and_flushed_once_and_confirmed_when_read_back() -> None:
    table, _, storage, flushes = table_and_store()
    case = a_case()
    table.put(case)
    assert Case.model_validate_json(storage[case.case_id]) == case
    asyncio.run(table.flush())
    asyncio.run(table.flush())  # nothing new written: no second flush
    assert flushes.count == 1
    asyncio.run(table.changed(record_of(case)))  # our write, read back
    assert table.rewrite_unconfirmed(lambda _: case, after_s=0) == 0


def test_a_write_not_read_back_in_time_is_written_again_as_the_case_stands_now() -> None:
    table, _, storage, _ = table_and_store()
    case = a_case()
    table.put(case)
    assert table.rewrite_unconfirmed(lambda _: case, after_s=3600) == 0  # not overdue yet
    now = commented(case, "called back")
    assert table.rewrite_unconfirmed(lambda _: now, after_s=0) == 1
    assert Case.model_validate_json(storage[case.case_id]) == now
    asyncio.run(table.changed(record_of(now)))
    assert table.rewrite_unconfirmed(lambda _: now, after_s=0) == 0


def test_a_later_version_from_another_worker_confirms_a_write_and_a_forgotten_case_is_not_rewritten() -> None:
    table, _, _, _ = table_and_store()
    case = a_case()
    table.put(case)
    asyncio.run(table.changed(record_of(commented(case, "from the other worker"))))
    assert table.rewrite_unconfirmed(lambda _: case, after_s=0) == 0
    table.put(case)
    assert table.rewrite_unconfirmed(lambda _: None, after_s=0) == 0  # gone from memory meanwhile
    assert table.rewrite_unconfirmed(lambda _: case, after_s=0) == 0
