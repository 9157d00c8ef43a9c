"""The batch-draining Faust consumer: the services' transport uses it, and it finds the offsets a
fetched batch skips exactly where Faust's own per-message drain loop finds them."""

from __future__ import annotations

from typing import NamedTuple

from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from services.common.faust_consumer import BatchDrainConsumer, gaps
from services.common.faust_kafka import TunedTransport

A, B = TP("raw", 0), TP("raw", 1)


class Msg(NamedTuple):
    offset: int


def faust_gaps(batch: list[tuple[TP, Msg]], read: dict[TP, int | None]) -> list[tuple[TP, int, int]]:
    """Faust's `Consumer._drain_messages` bookkeeping, message by message (the reference)."""
    read = dict(read)
    found: list[tuple[TP, int, int]] = []
    for tp, message in batch:
        r_offset = read.get(tp)
        if r_offset is None or message.offset >= r_offset:
            gap = message.offset - (r_offset or 0)
            if gap > 1 and r_offset:
                found.append((tp, r_offset + 1, message.offset))
            read[tp] = message.offset
    return found


def test_the_services_transport_drains_batches() -> None:
    assert issubclass(TunedTransport.Consumer, BatchDrainConsumer)


def test_contiguous_offsets_have_no_gap() -> None:
    batch = [(A, Msg(5)), (A, Msg(6)), (B, Msg(1)), (A, Msg(7))]
    assert gaps(batch, {A: 4, B: 0}) == []


def test_skipped_offsets_are_a_gap_per_partition() -> None:
    batch = [(A, Msg(8)), (B, Msg(3)), (A, Msg(12))]
    assert gaps(batch, {A: 4, B: 2}) == [(A, 5, 8), (A, 9, 12)]


def test_first_read_and_stale_messages_make_no_gap() -> None:
    batch = [(A, Msg(9)), (B, Msg(1))]  # A never read; B at 3 already: message 1 is stale
    assert gaps(batch, {B: 3}) == []


offsets = st.lists(st.tuples(st.sampled_from([A, B]), st.integers(0, 40).map(Msg)), max_size=30)
reads = st.fixed_dictionaries({}, optional={A: st.none() | st.integers(0, 40), B: st.none() | st.integers(0, 40)})


@given(offsets, reads)
def test_gaps_are_the_ones_faust_finds(batch: list[tuple[TP, Msg]], read: dict[TP, int | None]) -> None:
    assert gaps(batch, read) == faust_gaps(batch, read)
