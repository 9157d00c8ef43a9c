"""The sink's batch: bounded by size and age, one row per event, offsets it may commit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.sink.batch import Batch


def test_a_batch_is_ready_when_full() -> None:
    batch = Batch(max_rows=3, max_age_s=60)
    for offset in range(3):
        assert not batch.ready(0.0)
        batch.add(f"e{offset}", [offset], partition=0, offset=offset, now=0.0)
    assert batch.ready(0.0)


def test_a_batch_is_ready_when_old_enough() -> None:
    batch = Batch(max_rows=1000, max_age_s=0.5)
    batch.add("e", [1], partition=0, offset=0, now=10.0)
    assert not batch.ready(10.4) and batch.ready(10.5)


def test_an_empty_batch_is_never_ready() -> None:
    assert not Batch(max_rows=1, max_age_s=0).ready(1e9)


def test_a_repeated_event_keeps_one_row() -> None:
    batch = Batch(max_rows=10, max_age_s=1)
    batch.add("same", ["first"], 1, 5, 0.0)
    batch.add("same", ["second"], 1, 9, 0.0)
    assert batch.rows == {"same": ["first"]} and batch.messages == 2


def test_commit_offsets_are_one_past_the_highest_per_partition() -> None:
    batch = Batch(max_rows=10, max_age_s=1)
    for partition, offset in [(0, 4), (0, 2), (3, 10)]:
        batch.add(f"{partition}-{offset}", [], partition, offset, 0.0)
    batch.add(None, None, 1, 0, 0.0)  # unreadable message: no row, still committed past
    assert batch.commit_offsets() == {0: 5, 3: 11, 1: 1}
    assert batch.dedup_token("t") == "t/0:2-4,1:0-0,3:10-10"


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000)), min_size=1, max_size=50))
def test_the_dedup_token_depends_only_on_the_offsets_covered(pairs: list[tuple[int, int]]) -> None:
    forward, backward = Batch(100, 1), Batch(100, 1)
    for p, o in pairs:
        forward.add(f"{p}-{o}", [], p, o, 0.0)
    for p, o in reversed(pairs):
        backward.add(f"{p}-{o}", [], p, o, 0.0)
    assert forward.dedup_token("t") == backward.dedup_token("t")
    assert forward.commit_offsets() == backward.commit_offsets()
