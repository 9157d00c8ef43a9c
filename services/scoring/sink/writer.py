"""Insert a batch into ClickHouse once: filter stored ids, insert with dedup tokens, retry or
isolate what ClickHouse refuses for good."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from services.scoring.sink.errors import Refusal, refusal
from services.scoring.sink.isolate import insert_isolating
from services.scoring.sink.rows import COLUMNS, dedup_token, position

log = logging.getLogger("ksp.scoring.sink")


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    refused: list[tuple[str, Refusal]] = field(default_factory=list)  # event id, why


class ClickHouseWriter:
    def __init__(
        self,
        client_factory: Callable[[], Client],
        table: str,
        topic: str,
        *,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        on_failure: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self._client_factory = client_factory
        self._client: Client | None = None
        self.table = table
        self.topic = topic
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._on_failure = on_failure  # "transient" or "refused", for the failure counter

    def write(self, rows: Mapping[str, list[Any]], should_stop: Callable[[], bool]) -> WriteResult:
        """Store `rows` (by event id) once, except those refused for good; retries transient
        failures until stored or `should_stop()`."""
        delay = self.backoff_initial_s
        while True:
            try:
                return self._write_once(rows)
            except Exception as exc:  # transient: connection, server, timeout
                self._on_failure("transient")
                if should_stop():
                    raise
                log.warning("clickhouse insert failed, retrying in %.1f s: %s", delay, exc)
                self._client = None
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)

    def _write_once(self, rows: Mapping[str, list[Any]]) -> WriteResult:
        client = self._connected()
        stored = self._stored(client, list(rows))
        # Bisection in offset order: the same rows always split into the same parts.
        fresh = sorted((row for event_id, row in rows.items() if event_id not in stored), key=position)
        refused = insert_isolating(fresh, lambda part: self._insert(client, part), self._classify)
        for row, why in refused:
            log.error("clickhouse refused event %s (%s); dead-lettering it: %s", row[0], why.error, why.detail)
        return WriteResult(len(fresh) - len(refused), [(row[0], why) for row, why in refused])

    def _insert(self, client: Client, rows: Sequence[list[Any]]) -> None:
        client.insert(
            self.table,
            list(rows),
            column_names=list(COLUMNS),
            settings={
                "insert_deduplication_token": dedup_token(self.topic, rows),
                "deduplicate_blocks_in_dependent_materialized_views": 1,
            },
        )

    def _classify(self, exc: BaseException) -> Refusal | None:
        why = refusal(exc)
        if why is not None:
            self._on_failure("refused")
        return why

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
