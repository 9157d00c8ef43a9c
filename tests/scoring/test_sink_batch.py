"""The sink's batch: bounded by size and age, one row per event, offsets it may commit; and the
insert deduplication token, which names exactly the rows inserted."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.processing import DeadLetter, DeadLetterReason, RawMessage
from services.scoring.sink.batch import Batch
from services.scoring.sink.rows import dedup_token


def message(partition: int, offset: int) -> RawMessage:
    return RawMessage(value=b"{}", key=None, partition=partition, offset=offset, timestamp_ms=0)


def row(event_id: str, partition: int, offset: int) -> list[Any]:
    """A feedback_events row as far as the token reads it: id first, partition and offset last."""
    return [event_id, "...", partition, offset]


def test_a_batch_is_ready_when_full() -> None:
    batch = Batch(max_rows=3, max_age_s=60)
    for offset in range(3):
        assert not batch.ready(0.0)
        batch.add(message(0, offset), f"e{offset}", [offset], now=0.0)
    assert batch.ready(0.0)


def test_a_batch_is_ready_when_old_enough() -> None:
    batch = Batch(max_rows=1000, max_age_s=0.5)
    batch.add(message(0, 0), "e", [1], now=10.0)
    assert not batch.ready(10.4) and batch.ready(10.5)


def test_an_empty_batch_is_never_ready() -> None:
    assert not Batch(max_rows=1, max_age_s=0).ready(1e9)


def test_a_repeated_event_keeps_one_row_and_its_first_message() -> None:
    batch = Batch(max_rows=10, max_age_s=1)
    batch.add(message(1, 5), "same", ["first"], 0.0)
    batch.add(message(1, 9), "same", ["second"], 0.0)
    assert batch.rows == {"same": ["first"]} and batch.messages == 2
    assert batch.sources["same"].offset == 5


def test_commit_offsets_are_one_past_the_highest_per_partition() -> None:
    batch = Batch(max_rows=10, max_age_s=1)
    for partition, offset in [(0, 4), (0, 2), (3, 10)]:
        batch.add(message(partition, offset), f"{partition}-{offset}", [], 0.0)
    # an unreadable message: no row, a dead letter, and still committed past
    batch.add_dead_letter(DeadLetter(message(1, 0), DeadLetterReason.invalid_event, "bad"), 0.0)
    assert batch.commit_offsets() == {0: 5, 3: 11, 1: 1}
    assert [letter.message.offset for letter in batch.dead_letters] == [0] and not batch.ready(0.5)


def test_clear_forgets_rows_sources_and_dead_letters() -> None:
    batch = Batch(max_rows=10, max_age_s=1)
    batch.add(message(0, 1), "e", [], 0.0)
    batch.add_dead_letter(DeadLetter(message(0, 2), DeadLetterReason.invalid_event, "bad"), 0.0)
    batch.clear()
    assert (batch.rows, batch.sources, batch.dead_letters, batch.offsets, batch.messages) == ({}, {}, [], {}, 0)


def test_the_token_names_the_offset_ranges_and_the_rows() -> None:
    token = dedup_token("t", [row("a", 0, 4), row("b", 0, 2), row("c", 3, 10)])
    assert token.startswith("t/0:2-4,3:10-10/")


positions = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000)), min_size=1, max_size=50, unique=True)


@given(positions, st.randoms())
def test_the_token_depends_only_on_which_rows_not_on_their_order(pairs: list[tuple[int, int]], rng: Any) -> None:
    rows = [row(f"{p}-{o}", p, o) for p, o in pairs]
    shuffled = rows.copy()
    rng.shuffle(shuffled)
    assert dedup_token("t", rows) == dedup_token("t", shuffled)


@given(positions, st.data())
def test_other_rows_never_share_a_token(pairs: list[tuple[int, int]], data: st.DataObject) -> None:
    """ClickHouse drops an insert whose token it has seen: a part with other rows (a subset after
    bisection or after the stored-id filter, another event at the same offset) must differ."""
    rows = [row(f"{p}-{o}", p, o) for p, o in pairs]
    other = data.draw(st.one_of(
        st.lists(st.sampled_from(rows), min_size=1, max_size=len(rows) - 1, unique_by=lambda r: r[0])
        if len(rows) > 1 else st.nothing(),
        st.just([[r[0] + "x", *r[1:]] for r in rows]),
    ))
    assert dedup_token("t", rows) != dedup_token("t", other)
    assert dedup_token("t", rows) != dedup_token("u", rows)
