"""The chaos suite's aggregate invariant on the real embedded ClickHouse (part of `make test`, not
`make chaos`): it holds for a correct load, including a minute in which nobody answered CSAT, CES
or a comment (sums over no answers are 0 in the view and must recount as 0, not NULL), and it
reports a view that counts differently from the raw rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from schemas.scored import ScoredEvent
from services.common.clickhouse import connect, migrate
from services.common.settings import ClickHouseSettings
from services.scoring.processing import RawMessage, process_message
from services.scoring.sink.rows import COLUMNS, to_row
from tests.chaos.harness import check_aggregates

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(clickhouse) -> Iterator[ClickHouseSettings]:  # type: ignore[no-untyped-def]
    settings = ClickHouseSettings(url=clickhouse.url, database=f"invariants_{uuid.uuid4().hex[:8]}")
    migrate(settings)
    yield settings
    connect(settings, database="").command(f"DROP DATABASE IF EXISTS {settings.database}")


def scored(unit: str, i: int, minute: int, responses: list[dict[str, object]]) -> ScoredEvent:
    raw = orjson.dumps({"event_id": f"{unit}-{i}", "occurred_at": f"2026-11-28T10:{minute:02d}:05+00:00",
                        "touchpoint": "web", "source": "invariants", "unit": unit, "responses": responses})
    result = process_message(RawMessage(raw, None, 0, i, 1_764_330_000_000), analyse_text=None, now=NOW)
    assert isinstance(result, ScoredEvent), result
    return result


def store(settings: ClickHouseSettings, events: list[ScoredEvent]) -> None:
    client = connect(settings)
    try:
        client.insert("feedback_events", [to_row(e, 0, i) for i, e in enumerate(events)], column_names=COLUMNS)
    finally:
        client.close()


def test_a_minute_without_csat_ces_or_comments_recounts_to_the_views_zero_sums(
        database: ClickHouseSettings) -> None:
    unit = "u-" + uuid.uuid4().hex[:6]
    store(database, [
        scored(unit, 0, 1, [{"metric": "nps", "value": 9}]),  # only NPS in minute 10:01
        scored(unit, 1, 2, [{"metric": "nps", "value": 3}, {"metric": "csat", "value": 4, "scale": {"min": 1, "max": 5}}]),
    ])

    assert check_aggregates(database.url, unit, database.database) == []


def test_a_view_that_counts_differently_from_the_raw_rows_is_reported(database: ClickHouseSettings) -> None:
    unit = "u-" + uuid.uuid4().hex[:6]
    store(database, [scored(unit, 0, 1, [{"metric": "nps", "value": 9}])])
    client = connect(database)
    try:  # a second, spurious aggregate row for the same minute: the view now double counts
        client.command(f"INSERT INTO quality_minute (minute, touchpoint, unit, segment, internal, responses, "
                       f"promoters) SELECT minute, touchpoint, unit, segment, internal, 1, 1 FROM quality_minute "
                       f"WHERE unit = '{unit}'")
    finally:
        client.close()

    violations = check_aggregates(database.url, unit, database.database)

    assert any("responses=2 but recount=1" in v for v in violations), violations
    assert any("promoters=2 but recount=1" in v for v in violations), violations
