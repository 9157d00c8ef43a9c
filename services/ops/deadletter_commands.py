"""`ksp deadletters list` and `redrive`: stream the dead-letter topic through the selection and
print or re-send; the exit code tells scripts whether everything went through."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from services.common.kafka import partition_count
from services.common.settings import ServiceSettings
from services.ops.deadletter_kafka import Redriver, read_dead_letters
from services.ops.deadletters import (
    DeadLetterRecord,
    Selection,
    format_counts,
    format_line,
    redrive_message,
    to_json,
)

Echo = Callable[..., None]
FLUSH_EVERY = 500  # sends between acknowledgement checks (and progress lines)
PROGRESS_EVERY_S = 5.0


def selected(records: Iterable[DeadLetterRecord], selection: Selection, limit: int | None) -> Iterator[DeadLetterRecord]:
    taken = 0
    for record in records:
        if limit is not None and taken >= limit:
            return
        if selection.matches(record):
            taken += 1
            yield record


def list_dead_letters(settings: ServiceSettings, selection: Selection, *, limit: int | None, as_json: bool,
                      echo: Echo, idle_s: float = 10.0) -> int:
    """Print the selected dead letters (lines or NDJSON), then the count by reason (to stderr
    with --json, so stdout stays NDJSON). Exit code 0."""
    counts: Counter[str] = Counter()
    for record in selected(read_dead_letters(settings.kafka, settings.topics.deadletter, idle_s=idle_s),
                           selection, limit):
        counts[record.reason] += 1
        echo(json.dumps(to_json(record), ensure_ascii=False) if as_json else format_line(record))
    echo(format_counts(counts), err=as_json)
    return 0


class _Progress:
    def __init__(self, echo: Echo, dry_run: bool) -> None:
        self.echo, self.verb = echo, "would re-drive" if dry_run else "re-driven"
        self.sent: Counter[str] = Counter()
        self.failed = 0
        self.skipped = 0
        self._last = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self._last >= PROGRESS_EVERY_S:
            self._last = time.monotonic()
            self.echo(f"… {sum(self.sent.values())} {self.verb} so far", err=True)

    def summary(self) -> str:
        return (format_counts(self.sent, self.verb) + f"; {self.failed} failed; {self.skipped} skipped "
                "(no source topic, or the target topic does not exist)")


def redrive_dead_letters(settings: ServiceSettings, selection: Selection, *, to_topic: str | None,
                         dry_run: bool, limit: int | None, echo: Echo, idle_s: float = 10.0) -> int:
    """Re-send each selected dead letter's original message to its source topic (or `to_topic`).
    Exit code 0 when all went through, 1 when any failed or had no (existing) target topic."""
    progress = _Progress(echo, dry_run)
    redriver = None if dry_run else Redriver(settings.kafka)
    exists = _topic_checker(settings)
    try:
        for record in selected(read_dead_letters(settings.kafka, settings.topics.deadletter, idle_s=idle_s),
                               selection, limit):
            _redrive_one(record, to_topic, redriver, exists, progress)
            if redriver and sum(progress.sent.values()) % FLUSH_EVERY == 0:
                progress.failed += len(redriver.flush())
            progress.tick()
        if redriver:
            progress.failed += len(redriver.flush())
    finally:
        if redriver:
            redriver.close()
    echo(progress.summary())
    return 1 if progress.failed or progress.skipped else 0


def _redrive_one(record: DeadLetterRecord, to_topic: str | None, redriver: Redriver | None,
                 exists: Callable[[str], bool], progress: _Progress) -> None:
    message = redrive_message(record, to_topic)
    if message is None or not exists(message.topic):
        progress.skipped += 1
        progress.echo(f"skipped {record.location}: no existing target topic ({record.source})", err=True)
        return
    if redriver is None:
        progress.echo(f"{record.location} -> {message.topic}  {format_line(record)}")
    else:
        redriver.send(message)
    progress.sent[record.reason] += 1


def _topic_checker(settings: ServiceSettings) -> Callable[[str], bool]:
    """Whether a topic exists, asked once per topic: some brokers acknowledge sends to an
    unknown topic and drop them."""
    known: dict[str, bool] = {}

    def exists(topic: str) -> bool:
        if topic not in known:
            known[topic] = partition_count(settings.kafka, topic) is not None
        return known[topic]

    return exists
