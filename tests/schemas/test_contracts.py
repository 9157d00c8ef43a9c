"""The event contracts: what a touchpoint may send, and what it gets told when it is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import FeedbackEvent, Metric, Response, Scale, Touchpoint
from schemas.export import CONTRACTS, render

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
JSON_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "jsonschema"


def event(**overrides: object) -> dict:
    base = {
        "occurred_at": "2026-11-28T10:00:00+01:00",
        "touchpoint": "store",
        "source": "pos-survey",
        "responses": [{"metric": "nps", "value": 9}],
    }
    return base | overrides


def test_every_example_payload_is_a_valid_event() -> None:
    examples = sorted(EXAMPLES.glob("*.json"))
    assert len(examples) >= 5
    for path in examples:
        FeedbackEvent.model_validate_json(path.read_text())


def test_exported_json_schemas_are_current() -> None:
    for name, model in CONTRACTS.items():
        assert (JSON_SCHEMAS / name).read_text() == render(model), f"run `make schemas` ({name})"


def test_an_event_without_zone_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        FeedbackEvent.model_validate(event(occurred_at="2026-11-28T10:00:00"))


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:00", "1999-12-31T23:59:59+00:00", "2300-01-01T00:00:00+00:00"])
def test_a_time_outside_our_era_is_rejected(when: str) -> None:
    # ClickHouse could not store it, and a row the sink cannot insert would stall the pipeline.
    with pytest.raises(ValidationError, match="occurred_at must lie between"):
        FeedbackEvent.model_validate(event(occurred_at=when))


def test_unknown_fields_are_rejected_so_typos_surface() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        FeedbackEvent.model_validate(event(touchpiont="web"))


def test_an_event_must_say_something() -> None:
    with pytest.raises(ValidationError, match="at least one response or a comment"):
        FeedbackEvent.model_validate(event(responses=[]))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"metric": "nps", "value": 11}, "outside the scale"),
        ({"metric": "nps", "value": 7.5}, "whole numbers"),
        ({"metric": "nps", "value": 5, "scale": {"min": 1, "max": 5}}, "0-10 scale"),
        ({"metric": "csat", "value": 0}, "outside the scale"),
        ({"metric": "rating", "value": 3}, "needs its scale"),
        ({"metric": "rating", "value": 3, "scale": {"min": 5, "max": 1}}, "greater than"),
    ],
)
def test_answers_must_fit_their_scale(response: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeedbackEvent.model_validate(event(responses=[response]))


def test_internal_touchpoint_is_always_internal_feedback() -> None:
    assert FeedbackEvent.model_validate(event(touchpoint="internal")).internal is True


def test_the_derived_event_id_depends_only_on_content() -> None:
    first = FeedbackEvent.model_validate(event()).with_event_id()
    again = FeedbackEvent.model_validate(json.loads(json.dumps(event()))).with_event_id()
    other = FeedbackEvent.model_validate(event(unit="elsewhere")).with_event_id()
    assert first.event_id == again.event_id != other.event_id
    assert first.key == first.event_id.encode()


def test_a_given_event_id_is_kept() -> None:
    assert FeedbackEvent.model_validate(event(event_id="tp-42")).with_event_id().event_id == "tp-42"


answers = st.builds(
    Response,
    metric=st.sampled_from([Metric.csat, Metric.ces]),
    value=st.integers(min_value=1, max_value=5),
    scale=st.just(Scale(min=1, max=5)),
)


@given(responses=st.lists(answers, min_size=1, max_size=5), touchpoint=st.sampled_from(list(Touchpoint)))
def test_valid_events_survive_a_json_round_trip(responses: list[Response], touchpoint: Touchpoint) -> None:
    original = FeedbackEvent(occurred_at=datetime(2026, 1, 1, tzinfo=UTC), touchpoint=touchpoint,
                             source="s", responses=responses).with_event_id()
    assert FeedbackEvent.model_validate_json(original.model_dump_json()) == original
