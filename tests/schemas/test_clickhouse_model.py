"""The ClickHouse tables match their contracts, and migrations are idempotent."""

from __future__ import annotations

from schemas.aggregate import QualityAggregate
from services.common.clickhouse import connect, load_migrations, migrate
from services.common.settings import ClickHouseSettings
from services.scoring.sink.rows import COLUMNS


def columns(settings: ClickHouseSettings, table: str) -> list[str]:
    client = connect(settings)
    try:
        return [row[0] for row in client.query(f"DESCRIBE TABLE {table}").result_rows]
    finally:
        client.close()


def test_migrations_apply_once_and_then_do_nothing(clickhouse) -> None:  # type: ignore[no-untyped-def]
    settings = ClickHouseSettings(url=clickhouse.url, database="ksp_migration_test")
    applied = migrate(settings)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert migrate(settings) == []


def test_quality_minute_columns_are_the_quality_aggregate_contract(clickhouse) -> None:  # type: ignore[no-untyped-def]
    settings = ClickHouseSettings(url=clickhouse.url, database="ksp_migration_test")
    migrate(settings)
    theme_counts = {"themes", "negative_themes"}  # kept in theme_minute, one row per theme
    fields = [name for name in QualityAggregate.model_fields if name not in theme_counts]
    assert columns(settings, "ksp_migration_test.quality_minute") == fields


def test_the_sink_writes_every_feedback_events_column_but_the_insert_time(clickhouse) -> None:  # type: ignore[no-untyped-def]
    settings = ClickHouseSettings(url=clickhouse.url, database="ksp_migration_test")
    migrate(settings)
    table = columns(settings, "ksp_migration_test.feedback_events")
    assert set(table) - set(COLUMNS) == {"inserted_at"}
    assert set(COLUMNS) <= set(table)
