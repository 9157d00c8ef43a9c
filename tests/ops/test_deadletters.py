"""Dead letters as operators see them: the headers the pipeline writes parse into a record, a
selection picks by reason and time, and a re-drive rebuilds the original message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.cli import DEAD_LETTER_REASONS
from services.ops.deadletters import (
    REASONS,
    REDRIVEN_FROM,
    Selection,
    UnknownReason,
    format_counts,
    format_line,
    from_message,
    parse_since,
    redrive_message,
    to_json,
    validate_reasons,
)
from services.scoring.processing import DeadLetter, DeadLetterReason, RawMessage

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def letter(reason: DeadLetterReason = DeadLetterReason.invalid_event, detail: str = "responses: too short",
           extra: list[tuple[str, bytes]] | None = None, value: bytes = b'{"event_id": "e-1"}',
           timestamp_ms: int = NOW_MS):  # type: ignore[no-untyped-def]
    """A dead letter exactly as the scoring agent writes it (plus any `extra` headers)."""
    dead = DeadLetter(RawMessage(value, b"e-1", 3, 41, NOW_MS), reason, detail)
    return from_message(topic="ksp.feedback.deadletter", partition=1, offset=7, timestamp_ms=timestamp_ms,
                        key=b"e-1", value=value, headers=[*dead.headers("ksp.feedback.raw"), *(extra or [])])


def test_the_headers_the_scoring_agent_writes_parse_into_a_record() -> None:
    record = letter()
    assert (record.reason, record.detail) == ("invalid_event", "responses: too short")
    assert (record.source_topic, record.source_partition, record.source_offset) == ("ksp.feedback.raw", 3, 41)
    assert record.timestamp == NOW and record.clickhouse_error is None
    assert record.location == "ksp.feedback.deadletter/1/7" and record.source == "ksp.feedback.raw/3/41"


def test_a_message_without_our_headers_is_still_listed_as_unknown() -> None:
    record = from_message(topic="d", partition=0, offset=0, timestamp_ms=NOW_MS, key=None, value=None,
                          headers=[("ksp-source-offset", b"not a number")])
    assert (record.reason, record.source_topic, record.source_offset, record.value) == ("unknown", None, None, b"")
    assert redrive_message(record) is None  # nowhere to send it without --to-topic
    assert "?/?/?" in format_line(record)


def test_every_reason_the_pipeline_writes_is_known_and_the_cli_help_names_them_all() -> None:
    assert set(REASONS) == {r.value for r in DeadLetterReason} == set(DEAD_LETTER_REASONS)


def test_an_unknown_reason_is_an_error_naming_the_valid_ones() -> None:
    assert validate_reasons(["not_json", " clickhouse_refused "]) == {"not_json", "clickhouse_refused"}
    with pytest.raises(UnknownReason, match="unknown reason.*: bogus; choose from too_large, .*clickhouse_refused"):
        validate_reasons(["not_json", "bogus"])


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
    ("2026-11-27T08:30:00", datetime(2026, 11, 27, 8, 30, tzinfo=UTC)),
    ("2026-11-27T09:30:00+01:00", datetime(2026, 11, 27, 8, 30, tzinfo=UTC)),
    ("90m", NOW - timedelta(minutes=90)),
    ("6h", NOW - timedelta(hours=6)),
    ("7d", NOW - timedelta(days=7)),
])
def test_since_is_an_iso_date_or_datetime_or_an_age(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


def test_since_rejects_anything_else() -> None:
    with pytest.raises(ValueError, match="not an ISO date"):
        parse_since("yesterday", now=NOW)


def test_a_selection_picks_by_reason_and_time() -> None:
    old = letter(DeadLetterReason.not_json, timestamp_ms=NOW_MS - 3_600_000)
    new = letter(DeadLetterReason.clickhouse_refused)
    assert Selection().matches(old) and Selection().matches(new)
    assert [Selection(reasons=frozenset({"not_json"})).matches(r) for r in (old, new)] == [True, False]
    assert [Selection(since=NOW - timedelta(minutes=5)).matches(r) for r in (old, new)] == [False, True]


header_names = st.text(st.characters(codec="ascii", categories=("L", "N", "Pd")), min_size=1, max_size=12)
own_headers = st.lists(st.tuples(header_names.filter(lambda n: not n.startswith("ksp-")), st.binary(max_size=8)),
                       max_size=5)


@given(own_headers, st.sampled_from(list(DeadLetterReason)), st.booleans())
def test_a_redrive_keeps_key_value_and_own_headers_drops_ours_and_names_its_letter(
        own: list[tuple[str, bytes]], reason: DeadLetterReason, redriven_before: bool) -> None:
    added = [("ksp-clickhouse-error", b"VIOLATED_CONSTRAINT")]
    if redriven_before:
        added.append((REDRIVEN_FROM, b"ksp.feedback.deadletter/0/1"))
    record = letter(reason, extra=[*own, *added])
    message = redrive_message(record)
    assert message is not None
    assert (message.topic, message.key, message.value) == ("ksp.feedback.raw", b"e-1", record.value)
    assert message.headers == [*own, (REDRIVEN_FROM, b"ksp.feedback.deadletter/1/7")]


def test_to_topic_overrides_the_source_topic() -> None:
    message = redrive_message(letter(), to_topic="ksp.feedback.raw.retry")
    assert message is not None and message.topic == "ksp.feedback.raw.retry"


def test_a_line_shows_time_reason_source_key_and_the_detail_on_one_line_truncated() -> None:
    line = format_line(letter(detail="a\nlong " + "x" * 300), detail_width=40)
    assert line.startswith("2026-11-28T12:00:00.000Z  invalid_event       ksp.feedback.raw/3/41  key=e-1  a long x")
    assert line.endswith("…") and "\n" not in line and len(line.split("key=e-1  ")[1]) == 40


def test_json_carries_the_value_as_text_or_base64_when_it_is_not_utf8() -> None:
    text = to_json(letter())
    assert json.loads(json.dumps(text))["value"] == '{"event_id": "e-1"}'
    assert text["deadletter"] == {"topic": "ksp.feedback.deadletter", "partition": 1, "offset": 7}
    binary = to_json(letter(DeadLetterReason.not_utf8, value=b"\xff\xfe"))
    assert binary["value"] is None and binary["value_base64"] == "//4="


def test_counts_are_listed_most_frequent_first() -> None:
    assert format_counts({"not_json": 1, "clickhouse_refused": 2}) == \
        "3 dead letter(s): clickhouse_refused 2, not_json 1"
    assert format_counts({}) == "0 dead letter(s)"
