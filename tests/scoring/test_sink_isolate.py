"""Bisecting a batch isolates exactly the rows ClickHouse refuses and stores each other row once."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.sink.errors import Refusal
from services.scoring.sink.isolate import insert_isolating


class Refused(Exception):
    pass


class Unreachable(Exception):
    pass


def classify(exc: BaseException) -> Refusal | None:
    return Refusal("VIOLATED_CONSTRAINT", str(exc)) if isinstance(exc, Refused) else None


class Table:
    """Stands in for the insert callback only: it refuses any part containing a poison row."""

    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.stored: list[int] = []
        self.inserts = 0

    def insert(self, part: Sequence[int]) -> None:
        self.inserts += 1
        bad = self.poison.intersection(part)
        if bad:
            raise Refused(f"row {min(bad)}")
        self.stored.extend(part)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), max_size=8))))
def test_exactly_the_poison_rows_are_refused_and_every_other_row_is_stored_once(
    case: tuple[int, set[int]],
) -> None:
    n, poison = case
    table = Table(poison)
    refused = insert_isolating(list(range(n)), table.insert, classify)
    assert sorted(row for row, _ in refused) == sorted(poison)
    assert sorted(table.stored) == [row for row in range(n) if row not in poison]
    assert all(why.error == "VIOLATED_CONSTRAINT" for _, why in refused)
    assert table.inserts <= 1 + 2 * len(poison) * math.ceil(math.log2(max(n, 2)))


def test_a_healthy_batch_is_one_insert() -> None:
    table = Table(set())
    assert insert_isolating(list(range(2000)), table.insert, classify) == []
    assert table.inserts == 1


def test_a_transient_failure_propagates_for_the_caller_to_retry() -> None:
    def insert(part: Sequence[int]) -> None:
        raise Unreachable("connection refused")

    with pytest.raises(Unreachable):
        insert_isolating([1, 2, 3], insert, classify)


def test_nothing_to_insert_inserts_nothing() -> None:
    table = Table(set())
    assert insert_isolating([], table.insert, classify) == [] and table.inserts == 0
