"""The processing contract: any raw message becomes a scored event or a dead letter with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel, TextAnalysis
from services.scoring.processing import DeadLetter, DeadLetterReason, RawMessage, process_message

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def neutral_text(text: str, language: str | None) -> TextAnalysis:
    return TextAnalysis(language=language or "und", sentiment=0.0, sentiment_label=SentimentLabel.neutral)


def message(value: bytes | None, offset: int = 7) -> RawMessage:
    return RawMessage(value=value, key=None, partition=2, offset=offset, timestamp_ms=1_764_330_000_000)


def process(value: bytes | None) -> ScoredEvent | DeadLetter:
    return process_message(message(value), analyse_text=neutral_text, now=NOW)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_payload_is_scored(path: Path) -> None:
    result = process(path.read_bytes())
    assert isinstance(result, ScoredEvent)
    assert result.event.event_id and result.kafka_partition == 2 and result.kafka_offset == 7
    assert result.scorer_version.startswith("score-")


def test_a_detractor_is_scored_with_category_and_normalised_scores() -> None:
    result = process((EXAMPLES / "web_nps_comment_de.json").read_bytes())
    assert isinstance(result, ScoredEvent)
    assert result.nps == 3 and result.nps_category is NpsCategory.detractor
    assert result.sqi is not None and 0 <= result.sqi <= 100


def test_accepted_at_is_the_kafka_timestamp() -> None:
    result = process((EXAMPLES / "store_csat_ces.json").read_bytes())
    assert isinstance(result, ScoredEvent)
    assert result.accepted_at == datetime.fromtimestamp(1_764_330_000, UTC)
    assert result.csat == 100.0 and result.ces == pytest.approx(500 / 6)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not utf-8", DeadLetterReason.not_utf8),
        (b"{not json", DeadLetterReason.not_json),
        (b"", DeadLetterReason.not_json),
        (None, DeadLetterReason.not_json),
        (b'{"touchpoint": "web"}', DeadLetterReason.invalid_event),
        (b'{"schema_version": 2, "touchpoint": "web"}', DeadLetterReason.invalid_event),
        (b"[" * 10_000 + b"]" * 10_000, DeadLetterReason.not_json),
        (b'{"x": "' + b"a" * 300_000 + b'"}', DeadLetterReason.too_large),
    ],
)
def test_bad_messages_become_dead_letters_with_their_reason(value: bytes | None, reason: DeadLetterReason) -> None:
    result = process(value)
    assert isinstance(result, DeadLetter)
    assert result.reason is reason
    headers = dict(result.headers("ksp.feedback.raw"))
    assert headers["ksp-error-reason"] == reason.value.encode()
    assert headers["ksp-source-offset"] == b"7"


def test_a_schema_violation_names_the_field() -> None:
    bad = orjson.loads((EXAMPLES / "store_csat_ces.json").read_bytes())
    bad["responses"][0]["value"] = 9
    result = process(orjson.dumps(bad))
    assert isinstance(result, DeadLetter)
    assert "responses.0" in result.detail and "outside the scale" in result.detail


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    assert isinstance(process(value), DeadLetter | ScoredEvent)
