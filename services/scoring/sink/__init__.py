"""Scored topic -> ClickHouse, exactly once in effect.

Kafka delivers at least once and a crashed worker reprocesses, so the sink
(1) drops repeats of an event id within a batch, (2) filters out event ids already stored,
(3) sends an insert deduplication token naming the batch's offset ranges, so that a retried
insert of the same batch is stored once, and (4) commits Kafka offsets only after ClickHouse
confirmed the insert. While ClickHouse is down it retries with backoff and stops consuming.
"""
