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
        failures until stored or `should_stop()`.

        Which rows to send is decided once, before the first insert: a retry re-sends the same
        parts with the same tokens even if ClickHouse already stored some of them. A failure can
        leave an insert half done (the source part committed, a materialized view's not, e.g.
        when the server dies in between); only the identical repeat lets ClickHouse drop what it
        has and add what it misses, part by part and view by view. Filtering the stored ids
        again would skip those rows and leave the aggregates short."""
        delay = self.backoff_initial_s
        fresh: list[list[Any]] | None = None
        while True:
            try:
                client = self._connected()
                if fresh is None:
                    fresh = self._not_yet_stored(client, rows)
                return self._insert_all(client, fresh)
            except Exception as exc:  # transient: connection, server, timeout
                self._on_failure("transient")
                if should_stop():
                    raise
                log.warning("clickhouse insert failed, retrying in %.1f s: %s", delay, exc)
                self._client = None
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)

    def _not_yet_stored(self, client: Client, rows: Mapping[str, list[Any]]) -> list[list[Any]]:
        """The rows a replay with other batch boundaries has not stored yet, in offset order
        (bisection in offset order splits the same rows into the same parts)."""
        stored = self._stored(client, list(rows))
        return sorted((row for event_id, row in rows.items() if event_id not in stored), key=position)

    def _insert_all(self, client: Client, fresh: list[list[Any]]) -> WriteResult:
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
