"""Insert a batch into ClickHouse once: filter stored ids, insert with a dedup token, retry."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client

from services.scoring.sink.rows import COLUMNS

log = logging.getLogger("ksp.scoring.sink")


class ClickHouseWriter:
    def __init__(
        self,
        client_factory: Callable[[], Client],
        table: str,
        *,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
    ) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None
        self.table = table
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s

    def write(self, rows: dict[str, list[Any]], token: str, should_stop: Callable[[], bool]) -> int:
        """Store `rows` (by event id) once; retries until stored or `should_stop()`. Returns rows inserted."""
        delay = self.backoff_initial_s
        while True:
            try:
                return self._write_once(rows, token)
            except Exception as exc:  # any failure: connection, server, timeout
                if should_stop():
                    raise
                log.warning("clickhouse insert failed, retrying in %.1f s: %s", delay, exc)
                self._client = None
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)

    def _write_once(self, rows: dict[str, list[Any]], token: str) -> int:
        client = self._connected()
        stored = self._stored(client, list(rows))
        fresh = [row for event_id, row in rows.items() if event_id not in stored]
        if not fresh:
            return 0
        # The token names this exact content: a retry after a partial insert sends a smaller
        # set, which must not be mistaken for the first attempt.
        digest = hashlib.blake2b("\n".join(row[0] for row in fresh).encode(), digest_size=8)
        client.insert(
            self.table,
            fresh,
            column_names=list(COLUMNS),
            settings={
                "insert_deduplication_token": f"{token}/{digest.hexdigest()}",
                "deduplicate_blocks_in_dependent_materialized_views": 1,
            },
        )
        return len(fresh)

    def _stored(self, client: Client, event_ids: list[str]) -> set[str]:
        result = client.query(
            f"SELECT event_id FROM {self.table} WHERE event_id IN {{ids:Array(String)}}",
            parameters={"ids": event_ids},
        )
        return {row[0] for row in result.result_rows}

    def _connected(self) -> Client:
        if self._client is None:
            self._client = self._client_factory()
        return self._client
