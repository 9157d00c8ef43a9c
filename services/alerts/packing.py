"""Many repartition records in one Kafka message.

The repartition agent sends each batch's records for one partition of a repartition topic as
one message (`pack`), and the detecting agents unpack them (`unpack`). Faust's cost is per
message — tasks, futures, offsets, a produce-request entry — not per byte; with one record per
scope level and per customer for every scored event, per-record messages cost the alerts
service more CPU than the detection. Records keep their order, so per-key order is kept:
all records of a key go to the partition Kafka's partitioner gives that key.

Format: a 4-byte magic, then per record a big-endian u32 key length, the key, a u32 value
length, the value. A message without the magic is one plain record (its own key and value).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

MAGIC = b"KSPk"
_LEN = struct.Struct(">I")

Record = tuple[bytes, bytes]


def pack(records: Sequence[Record]) -> bytes:
    parts = [MAGIC]
    for key, value in records:
        parts += (_LEN.pack(len(key)), key, _LEN.pack(len(value)), value)
    return b"".join(parts)


def unpack(key: bytes | None, value: bytes) -> list[Record]:
    """The records of one message: packed ones, or the message itself as one record."""
    if not value.startswith(MAGIC):
        return [(key or b"", value)]
    out, at, end = [], len(MAGIC), len(value)
    try:
        while at < end:
            (n,) = _LEN.unpack_from(value, at)
            k = value[at + 4:at + 4 + n]
            at += 4 + n
            (n,) = _LEN.unpack_from(value, at)
            out.append((k, value[at + 4:at + 4 + n]))
            at += 4 + n
    except struct.error as exc:
        raise ValueError(f"truncated packed repartition message: {exc}") from exc
    if at != end:
        raise ValueError("truncated packed repartition message")
    return out


class Message(Protocol):
    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes: ...


def unpack_all(messages: Iterable[Message], unreadable: Callable[[Message, ValueError], None]) -> list[Record]:
    """The records of many messages; one that cannot be unpacked (a bug or a foreign producer)
    is handed to `unreadable` and skipped, so it cannot stop its agent and its batch."""
    out: list[Record] = []
    for message in messages:
        try:
            out += unpack(message.key, message.value)
        except ValueError as exc:
            unreadable(message, exc)
    return out
