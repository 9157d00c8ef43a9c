"""The scoring baseline: a plain aiokafka loop doing the agent's work without Faust.

consume a batch (<= 500) -> `process_message` with the same text analyser -> send every result
(scored or dead letter) and, like the agent, the batch's partial minute aggregates -> wait for
all acks -> commit the batch's offsets. Run as its own process like the worker:
python -m bench.plainloop BOOTSTRAP RAW_TOPIC SCORED_TOPIC DEAD_TOPIC GROUP [AGGREGATES_TOPIC]
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime


async def run(bootstrap: str, raw: str, scored: str, dead: str, group: str, aggregates: str | None = None,
              *, batch: int = 500) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from schemas.scored import ScoredEvent
    from services.scoring.aggregates import aggregate_key_bytes, fold
    from services.scoring.processing import DeadLetter, RawMessage, process_message
    from services.scoring.text import analyse

    analyse("warm-up", "de")
    consumer = AIOKafkaConsumer(raw, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5,
                                max_batch_size=1024 * 1024)
    await producer.start()
    await consumer.start()
    try:
        while True:
            records = await consumer.getmany(timeout_ms=100, max_records=batch)
            if not records:
                continue
            now = datetime.now(UTC)
            futures = []
            results = []
            for tp, messages in records.items():
                for m in messages:
                    result = process_message(RawMessage(m.value, m.key, tp.partition, m.offset, m.timestamp),
                                             analyse_text=analyse, now=now)
                    results.append(result)
                    if isinstance(result, DeadLetter):
                        futures.append(await producer.send(dead, result.message.value or b"", key=result.message.key,
                                                           headers=result.headers(raw)))
                    else:
                        futures.append(await producer.send(scored, result.model_dump_json().encode(),
                                                           key=result.event_id.encode()))
            if aggregates:
                for a in fold([r for r in results if isinstance(r, ScoredEvent)]):
                    futures.append(await producer.send(aggregates, a.model_dump_json().encode(),
                                                       key=aggregate_key_bytes(a)))
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(*sys.argv[1:7]))


if __name__ == "__main__":
    main()
