"""`ksp migrate --cluster NAME`: the rendered ON CLUSTER DDL (Replicated*MergeTree, Distributed
`*_all` tables, views over them) is parsed by the real ClickHouse engine (no cluster exists
locally: parse only), and the single-node DDL stays exactly as written."""

from __future__ import annotations

import re

import pytest

from services.common.clickhouse import (
    DISTRIBUTED_SUFFIX,
    REPLICA_PATH,
    connect,
    load_migrations,
    render,
    render_all,
)
from services.common.settings import ClickHouseSettings

DB, CLUSTER = "kundensprechen", "ksp_cluster"
STATEMENTS = [s for m in load_migrations() for s in m.statements]
CLUSTER_SQL = [sql for s in STATEMENTS for sql in render_all(s, DB, CLUSTER)]


def test_single_node_ddl_is_unchanged() -> None:
    for statement in STATEMENTS:
        assert render(statement, DB, None) == statement.replace("{db}", DB)
        assert render_all(statement, DB, None) == [statement.replace("{db}", DB)]


def test_every_cluster_statement_is_on_cluster_and_no_plain_merge_tree_is_left() -> None:
    for sql in CLUSTER_SQL:
        assert re.match(rf"(CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS|DROP VIEW IF EXISTS|ALTER TABLE) {DB}\.\w+ "
                        rf"ON CLUSTER {CLUSTER}\b", sql), sql[:120]
        engine = re.search(r"ENGINE = (\w+)", sql)
        if engine:
            assert engine.group(1).startswith(("Replicated", "Distributed")), engine.group(1)
        assert "non_replicated_deduplication_window" not in sql


def test_tables_are_replicated_with_shard_and_replica_macros_and_the_dedup_window() -> None:
    tables = {re.search(r"EXISTS \S+\.(\w+)", sql).group(1): sql for sql in CLUSTER_SQL  # type: ignore[union-attr]
              if sql.startswith("CREATE TABLE") and "Distributed(" not in sql}
    assert {"feedback_events", "quality_minute", "theme_minute", "quality_hour", "quality_day"} <= set(tables)
    for name, sql in tables.items():
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\({re.escape(REPLICA_PATH)}", sql), name
    assert REPLICA_PATH == "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
    assert f"ENGINE = ReplicatedReplacingMergeTree({REPLICA_PATH})" in tables["feedback_events"]
    assert "SETTINGS replicated_deduplication_window = 10000" in tables["feedback_events"]
    for name in ("quality_minute", "theme_minute", "quality_hour", "quality_day"):
        assert f"ENGINE = ReplicatedSummingMergeTree({REPLICA_PATH})" in tables[name]


def test_each_table_has_a_distributed_table_and_views_read_those() -> None:
    distributed = {m.group(1): m.group(2) for sql in CLUSTER_SQL
                   if (m := re.search(rf"EXISTS {DB}\.(\w+) ON CLUSTER .* ENGINE = Distributed\((.*)\)$", sql))}
    assert distributed[f"feedback_events{DISTRIBUTED_SUFFIX}"] == f"{CLUSTER}, {DB}, feedback_events, cityHash64(event_id)"
    tables = {re.search(r"EXISTS \S+\.(\w+)", sql).group(1) for sql in CLUSTER_SQL  # type: ignore[union-attr]
              if sql.startswith("CREATE TABLE") and "Distributed(" not in sql}
    assert set(distributed) == {f"{t}{DISTRIBUTED_SUFFIX}" for t in tables}
    for table in tables - {"feedback_events"}:
        assert distributed[f"{table}{DISTRIBUTED_SUFFIX}"].startswith(f"{CLUSTER}, {DB}, {table}")
    for sql in CLUSTER_SQL:
        sources = re.findall(rf"FROM ({DB}\.\w+)", sql)
        if sql.startswith("CREATE MATERIALIZED VIEW"):
            # Materialized views fire on inserts into the local table of each shard, write local.
            assert re.search(rf"TO {DB}\.\w+ AS", sql) and not any(s.endswith(DISTRIBUTED_SUFFIX) for s in sources)
        elif sql.startswith("CREATE VIEW"):
            assert sources and all(s.endswith(DISTRIBUTED_SUFFIX) for s in sources), sources


def test_migrate_records_its_versions_in_a_replicated_table_on_a_cluster() -> None:
    sql = render("CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32) "
                 "ENGINE = ReplacingMergeTree ORDER BY version", DB, CLUSTER)
    assert f"ON CLUSTER {CLUSTER}" in sql and "ReplicatedReplacingMergeTree(" in sql


def test_later_alter_and_drop_migrations_also_run_on_cluster() -> None:
    assert render("ALTER TABLE {db}.feedback_events ADD COLUMN IF NOT EXISTS x UInt8", DB, CLUSTER) == (
        f"ALTER TABLE {DB}.feedback_events ON CLUSTER {CLUSTER} ADD COLUMN IF NOT EXISTS x UInt8")
    assert render("DROP TABLE IF EXISTS {db}.old", DB, CLUSTER) == f"DROP TABLE IF EXISTS {DB}.old ON CLUSTER {CLUSTER}"


@pytest.fixture(scope="module")
def parser(clickhouse):  # type: ignore[no-untyped-def]
    client = connect(ClickHouseSettings(url=clickhouse.url), database="")
    yield client
    client.close()


@pytest.mark.parametrize("index", range(len(CLUSTER_SQL)))
def test_the_clickhouse_parser_accepts_the_cluster_ddl(parser, index: int) -> None:  # type: ignore[no-untyped-def]
    sql = CLUSTER_SQL[index]
    formatted = parser.query("SELECT formatQuery({sql:String})", parameters={"sql": sql}).result_rows[0][0]
    assert f"ON CLUSTER {CLUSTER}" in formatted
    ast = parser.raw_query(f"EXPLAIN AST {sql}", fmt="TabSeparated").decode()
    assert ast.startswith(("CreateQuery", "Create", "DropQuery", "AlterQuery")), ast[:200]


def test_the_parser_check_is_not_vacuous(parser) -> None:  # type: ignore[no-untyped-def]
    from clickhouse_connect.driver.exceptions import DatabaseError

    with pytest.raises(DatabaseError):
        parser.query("SELECT formatQuery({sql:String})",
                     parameters={"sql": CLUSTER_SQL[0].replace(f"ON CLUSTER {CLUSTER}", "ON CLUSTER")})


def test_the_replicated_settings_exist_in_this_clickhouse(parser) -> None:  # type: ignore[no-untyped-def]
    names = {row[0] for row in parser.query(
        "SELECT name FROM system.merge_tree_settings WHERE name IN "
        "('replicated_deduplication_window', 'non_replicated_deduplication_window')").result_rows}
    assert names == {"replicated_deduplication_window", "non_replicated_deduplication_window"}
    engines = {row[0] for row in parser.query(
        "SELECT name FROM system.table_engines WHERE name IN "
        "('ReplicatedReplacingMergeTree', 'ReplicatedSummingMergeTree', 'Distributed')").result_rows}
    assert engines == {"ReplicatedReplacingMergeTree", "ReplicatedSummingMergeTree", "Distributed"}
