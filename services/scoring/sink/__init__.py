"""Scored topic -> ClickHouse, exactly once in effect, and nothing lost.

Kafka delivers at least once and a crashed worker reprocesses, so the sink
(1) drops repeats of an event id within a batch, (2) filters out event ids already stored,
(3) sends with each insert a deduplication token naming exactly the rows inserted, so that an
insert of the same rows (a retry, a replay) is stored once — a retry re-sends the same parts, so
rows a half-done insert stored in the table but not in its materialized views reach the views — and (4) commits Kafka offsets only
after every message of the batch is stored or on the dead-letter topic.
Failures retrying may fix (ClickHouse down, overloaded, read-only) are retried with backoff while
consumption stops; rows ClickHouse refuses for good are isolated by bisecting the batch
(`isolate.py`, classified in `errors.py`) and dead-lettered with the reason.
"""
