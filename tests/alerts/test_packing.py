"""Repartition messages carry many (key, value) records; unpacking gives them back in order,
and a message that is not packed is one record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.packing import MAGIC, pack, unpack, unpack_all

records = st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=300)), max_size=30)


@given(records)
def test_unpack_gives_back_the_packed_records_in_order(rs: list[tuple[bytes, bytes]]) -> None:
    assert unpack(None, pack(rs)) == rs


@given(st.binary(max_size=40), st.binary(max_size=300).filter(lambda v: not v.startswith(MAGIC)))
def test_a_plain_message_is_one_record(key: bytes, value: bytes) -> None:
    assert unpack(key, value) == [(key, value)]
    assert unpack(None, value) == [(b"", value)]


@pytest.mark.parametrize("cut", [1, 2, 6, 9])
def test_a_truncated_message_is_refused(cut: int) -> None:
    packed = pack([(b"k", b"value")])
    with pytest.raises(ValueError, match="truncated"):
        unpack(None, packed[:-cut])


def test_a_message_that_cannot_be_unpacked_is_reported_and_skipped_not_fatal() -> None:
    class Event:
        def __init__(self, key: bytes | None, value: bytes) -> None:
            self.key, self.value = key, value

    broken = Event(None, pack([(b"k", b"lost")])[:-2])
    reported: list[tuple[object, str]] = []
    records = unpack_all([Event(None, pack([(b"a", b"1"), (b"b", b"2")])), broken, Event(b"c", b"3")],
                         lambda message, exc: reported.append((message, str(exc))))
    assert records == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    assert [(m, "truncated" in why) for m, why in reported] == [(broken, True)]
