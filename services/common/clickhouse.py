"""ClickHouse access over HTTP (clickhouse-connect) and the ordered, idempotent migrations."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from services.common.settings import ClickHouseSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"
_STATEMENT_SPLIT = re.compile(r";\s*(?:\n|$)")


def connect(settings: ClickHouseSettings, database: str | None = None) -> Client:
    """A client for the configured server; `database=''` connects without selecting one."""
    url = urlparse(settings.url)
    return clickhouse_connect.get_client(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8443 if url.scheme == "https" else 8123),
        secure=url.scheme == "https",
        username=settings.username,
        password=settings.password.get_secret_value(),
        database=settings.database if database is None else database,
        connect_timeout=settings.connect_timeout_s,
        send_receive_timeout=settings.send_receive_timeout_s,
        autogenerate_session_id=False,
        ca_cert=settings.ca_cert,
        client_cert=settings.client_cert,
        client_cert_key=settings.client_cert_key,
    )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: list[str]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
        statements = [s.strip() for s in _STATEMENT_SPLIT.split(text) if s.strip()]
        migrations.append(Migration(int(path.name[:4]), path.stem, statements))
    return migrations


def render(statement: str, database: str, cluster: str | None) -> str:
    """One migration statement for this deployment: single-node as written, or for a cluster
    (ON CLUSTER, Replicated*MergeTree engines, replicated dedup window, views over `*_all`)."""
    sql = statement.replace("{db}", database)
    if cluster:
        sql = _replicated(_on_cluster(sql, cluster), database)
    return sql


def render_all(statement: str, database: str, cluster: str | None) -> list[str]:
    """`render`, plus on a cluster the Distributed table `<table>_all` over each MergeTree table."""
    sql = render(statement, database, cluster)
    table = _merge_tree_table(statement)
    if not cluster or table is None:
        return [sql]
    key = DISTRIBUTED_SHARDING_KEYS.get(table)
    arguments = f"{cluster}, {database}, {table}" + (f", {key}" if key else "")
    distributed = (f"CREATE TABLE IF NOT EXISTS {database}.{table}{DISTRIBUTED_SUFFIX} ON CLUSTER {cluster} "
                   f"AS {database}.{table} ENGINE = Distributed({arguments})")
    return [sql, distributed]


# On a cluster every MergeTree table `t` is local to its shard (replicated within it) and
# `t_all` is the Distributed table over all shards: analysts and multi-shard readers use `t_all`.
DISTRIBUTED_SUFFIX = "_all"
# Inserts through `feedback_events_all` put an event always on the same shard, so its
# ReplacingMergeTree key and the sink's "already stored?" check see every copy of it.
DISTRIBUTED_SHARDING_KEYS = {"feedback_events": "cityHash64(event_id)"}
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
_MERGE_TREE = re.compile(
    r"\bENGINE\s*=\s*((?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)?MergeTree)\b"
    r"(?:\s*\(([^)]*)\))?",
    flags=re.IGNORECASE,
)


def _on_cluster(sql: str, cluster: str) -> str:
    """Add ON CLUSTER after the object name of a CREATE, ALTER or DROP statement."""
    return re.sub(
        r"^((?:CREATE\s+(?:MATERIALIZED\s+VIEW|TABLE|VIEW|DATABASE)\s+IF\s+NOT\s+EXISTS"
        r"|ALTER\s+TABLE|DROP\s+(?:TABLE|VIEW|DATABASE)(?:\s+IF\s+EXISTS)?)\s+\S+)",
        rf"\1 ON CLUSTER {cluster}",
        sql,
        count=1,
        flags=re.IGNORECASE,
    )


def _replicated(sql: str, database: str) -> str:
    """Cluster engines: Replicated*MergeTree in ZooKeeper/Keeper path per shard, the replicated
    insert-dedup window (shared by the replicas) instead of the non-replicated one, and plain
    views reading the Distributed `*_all` tables so they see every shard."""

    def engine(match: re.Match[str]) -> str:
        arguments = ", ".join(a for a in (REPLICA_PATH, (match.group(2) or "").strip()) if a)
        return f"ENGINE = Replicated{match.group(1)}({arguments})"

    sql = _MERGE_TREE.sub(engine, sql)
    sql = re.sub(r"\bnon_replicated_deduplication_window\b", "replicated_deduplication_window", sql)
    if re.match(r"CREATE\s+VIEW\b", sql, flags=re.IGNORECASE):
        tables = _merge_tree_tables()

        def distributed(match: re.Match[str]) -> str:
            name = match.group(3)
            return f"{match.group(1)} {match.group(2)}.{name}{DISTRIBUTED_SUFFIX if name in tables else ''}"

        sql = re.sub(rf"\b(FROM|JOIN)\s+({re.escape(database)})\.(\w+)\b", distributed, sql,
                     flags=re.IGNORECASE)
    return sql


def _merge_tree_table(statement: str) -> str | None:
    """The table a `CREATE TABLE ... ENGINE = *MergeTree` statement creates, else None."""
    created = re.match(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\S+)", statement, flags=re.IGNORECASE)
    if created is None or not _MERGE_TREE.search(statement):
        return None
    return created.group(1).split(".")[-1]


@functools.cache
def _merge_tree_tables() -> frozenset[str]:
    """Names of the MergeTree tables the migrations create (these get a `*_all` table)."""
    return frozenset(filter(None, (_merge_tree_table(s) for m in load_migrations() for s in m.statements)))


def migrate(
    settings: ClickHouseSettings,
    progress: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply the migrations not yet recorded in `{db}.schema_migrations`; returns those applied."""
    db = settings.database
    client = connect(settings, database="")
    try:
        client.command(render(f"CREATE DATABASE IF NOT EXISTS {db}", db, settings.cluster))
        client.command(render(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = ReplacingMergeTree ORDER BY version", db, settings.cluster))
        done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
        applied = []
        for migration in load_migrations():
            if migration.version in done:
                continue
            for statement in migration.statements:
                for sql in render_all(statement, db, settings.cluster):
                    client.command(sql)
            client.insert(f"{db}.schema_migrations", [[migration.version, migration.name]],
                          column_names=["version", "name"])
            applied.append(migration)
            if progress:
                progress(migration)
        return applied
    finally:
        client.close()
