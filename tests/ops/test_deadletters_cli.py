"""`ksp deadletters` on the real embedded broker: list reads the whole topic and counts by
reason, redrive re-publishes the original messages to their source topic (or --to-topic) and
changes nothing with --dry-run; wrong options are refused with the valid choices."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from services.cli import app
from services.common.kafka import ensure_topics, security_config
from services.common.settings import KafkaSettings
from services.ops.deadletter_kafka import read_dead_letters
from services.ops.deadletters import DeadLetterRecord
from services.scoring.processing import DeadLetter, DeadLetterReason, RawMessage

runner = CliRunner()
LETTERS = [  # (reason, source topic suffix, event id)
    (DeadLetterReason.invalid_event, "raw", "e-0"),
    (DeadLetterReason.not_json, "raw", "e-1"),
    (DeadLetterReason.invalid_event, "raw", "e-2"),
    (DeadLetterReason.clickhouse_refused, "scored", "e-3"),
]


@dataclass
class Topics:
    kafka: KafkaSettings
    raw: str
    scored: str
    dead: str

    def read(self, topic: str) -> list[DeadLetterRecord]:
        return list(read_dead_letters(self.kafka, topic, idle_s=5))


@pytest.fixture
def topics(kafka, monkeypatch: pytest.MonkeyPatch) -> Iterator[Topics]:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers, topic_partitions=3)
    made = Topics(settings, f"test.dl.{run}.raw", f"test.dl.{run}.scored", f"test.dl.{run}.dead")
    ensure_topics(settings, [made.raw, made.scored, made.dead])
    monkeypatch.setenv("KSP_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("KSP_TOPICS__DEADLETTER", made.dead)
    producer = KafkaProducer(**security_config(settings), acks="all", enable_idempotence=False)
    for i, (reason, source, event_id) in enumerate(LETTERS):
        value = b"not json" if reason is DeadLetterReason.not_json else json.dumps({"event_id": event_id}).encode()
        dead = DeadLetter(RawMessage(value, event_id.encode(), i % 2, 100 + i, 0), reason, f"detail {i}")
        headers = [*dead.headers(getattr(made, source)), ("traceparent", f"00-{i}".encode())]
        producer.send(made.dead, value, key=event_id.encode(), headers=headers).get(10)
    producer.close()
    yield made


def ksp(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["deadletters", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_prints_one_line_per_letter_and_the_count_by_reason(topics: Topics) -> None:
    code, out, _ = ksp("list")
    lines = out.splitlines()
    assert code == 0, out
    assert len(lines) == 5
    assert {line.split()[1] for line in lines[:4]} == {"invalid_event", "not_json", "clickhouse_refused"}
    assert any(f"{topics.scored}/1/103  key=e-3  detail 3" in line for line in lines)
    assert lines[-1] == "4 dead letter(s): invalid_event 2, clickhouse_refused 1, not_json 1"


def test_list_filters_by_reason_and_limit_and_json_is_ndjson(topics: Topics) -> None:
    code, out, err = ksp("list", "--reason", "invalid_event", "--json")
    assert code == 0
    letters = [json.loads(line) for line in out.splitlines()]
    assert sorted(letter["key"] for letter in letters) == ["e-0", "e-2"]
    assert {letter["source_topic"] for letter in letters} == {topics.raw}
    assert letters[0]["headers"] == {"traceparent": letters[0]["headers"]["traceparent"]}  # only its own
    assert "2 dead letter(s): invalid_event 2" in err
    code, out, _ = ksp("list", "--limit", "1", "--since", "1d")
    assert code == 0 and out.splitlines()[-1] == f"1 dead letter(s): {out.split()[1]} 1"


def test_redrive_republishes_the_originals_to_their_source_topic_and_names_the_letter(topics: Topics) -> None:
    code, out, _ = ksp("redrive", "--reason", "invalid_event")
    assert code == 0, out
    assert out.splitlines()[-1].startswith("2 re-driven: invalid_event 2; 0 failed; 0 skipped")
    letters = {r.key: r for r in topics.read(topics.dead)}
    redriven = topics.read(topics.raw)
    assert sorted(r.key or b"" for r in redriven) == [b"e-0", b"e-2"]
    for message in redriven:
        letter = letters[message.key]
        assert message.value == letter.value
        assert message.headers == (*letter.original_headers(), ("ksp-redriven-from", letter.location.encode()))
    assert topics.read(topics.scored) == []  # the other reasons stay where they are


def test_redrive_to_another_topic_and_dry_run_sends_nothing(topics: Topics) -> None:
    code, out, _ = ksp("redrive", "--reason", "clickhouse_refused", "--reason", "not_json", "--dry-run")
    assert code == 0
    assert "-> " + topics.scored in out and "-> " + topics.raw in out
    assert out.splitlines()[-1].startswith("2 would re-drive: clickhouse_refused 1, not_json 1")
    code, out, _ = ksp("redrive", "--reason", "clickhouse_refused", "--to-topic", topics.raw)
    assert code == 0, out
    assert [r.key for r in topics.read(topics.raw)] == [b"e-3"]
    assert topics.read(topics.scored) == []


def test_a_missing_target_topic_is_skipped_with_exit_code_1(topics: Topics) -> None:
    code, out, err = ksp("redrive", "--reason", "not_json", "--to-topic", f"{topics.raw}.missing")
    assert code == 1
    assert "skipped" in err and out.splitlines()[-1].startswith("0 re-driven; 0 failed; 1 skipped")


def test_a_missing_dead_letter_topic_is_an_error(topics: Topics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSP_TOPICS__DEADLETTER", f"{topics.dead}.missing")
    code, _, err = ksp("list")
    assert code == 1 and "does not exist" in err


@pytest.mark.parametrize("command", ["list", "redrive"])
def test_an_unknown_reason_or_since_is_refused_with_the_valid_choices(command: str) -> None:
    result = runner.invoke(app, ["deadletters", command, "--reason", "bogus"])
    assert result.exit_code == 2
    assert "unknown reason(s): bogus" in result.output and "clickhouse_refused" in result.output
    result = runner.invoke(app, ["deadletters", command, "--reason", "not_json", "--since", "yesterday"])
    assert result.exit_code == 2 and "not an ISO date" in result.output


def test_redrive_requires_a_reason() -> None:
    result = runner.invoke(app, ["deadletters", "redrive"])
    assert result.exit_code == 2 and "--reason" in result.output
