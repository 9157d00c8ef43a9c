"""ClickHouse access over HTTP (clickhouse-connect) and the ordered, idempotent migrations."""

from __future__ import annotations

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
    sql = statement.replace("{db}", database)
    if cluster:
        sql = _on_cluster(sql, cluster)
    return sql


def _on_cluster(sql: str, cluster: str) -> str:
    """Add ON CLUSTER after the object name of a CREATE statement."""
    return re.sub(
        r"^(CREATE\s+(?:MATERIALIZED\s+VIEW|TABLE|VIEW|DATABASE)\s+IF\s+NOT\s+EXISTS\s+\S+)",
        rf"\1 ON CLUSTER {cluster}",
        sql,
        count=1,
        flags=re.IGNORECASE,
    )


def migrate(
    settings: ClickHouseSettings,
    progress: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply the migrations not yet recorded in `{db}.schema_migrations`; returns those applied."""
    db = settings.database
    client = connect(settings, database="")
    try:
        client.command(render(f"CREATE DATABASE IF NOT EXISTS {db}", db, settings.cluster))
        client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {row[0] for row in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
        applied = []
        for migration in load_migrations():
            if migration.version in done:
                continue
            for statement in migration.statements:
                client.command(render(statement, db, settings.cluster))
            client.insert(f"{db}.schema_migrations", [[migration.version, migration.name]],
                          column_names=["version", "name"])
            applied.append(migration)
            if progress:
                progress(migration)
        return applied
    finally:
        client.close()
