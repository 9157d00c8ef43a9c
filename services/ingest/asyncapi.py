"""Builds docs/asyncapi.yaml (AsyncAPI 3) from the pydantic contracts, so it cannot drift.

    python -m services.ingest.asyncapi > docs/asyncapi.yaml

tests/ingest/test_asyncapi.py fails when the committed file differs from this output.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from schemas.feedback import FeedbackEvent
from schemas.scored import ScoredEvent
from schemas.topics import Topics

_REF = "#/components/schemas/{model}"
_KAFKA = {"bindingVersion": "0.5.0"}


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in (FeedbackEvent, ScoredEvent):
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _message(name: str, title: str, summary: str, payload: dict[str, Any], key: str,
             headers: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
        "bindings": {"kafka": {"key": {"type": "string", "description": key}, **_KAFKA}},
    }
    if headers:
        msg["headers"] = headers
    return msg


# `ksp deadletters redrive` re-publishes a dead letter to its source topic with this header.
REDRIVEN_HEADERS = {
    "type": "object",
    "properties": {
        "ksp-redriven-from": {"type": "string", "description": (
            "Only on a message re-published by `ksp deadletters redrive`: the dead letter it came "
            "from, as topic/partition/offset.")},
    },
}


def build() -> dict[str, Any]:
    topics = Topics.model_validate({})
    dead_headers = {
        "type": "object",
        "properties": {
            "ksp-error-reason": {"type": "string",
                                 "enum": ["too_large", "not_utf8", "not_json", "invalid_event", "scoring_failed",
                                          "clickhouse_refused"]},
            "ksp-clickhouse-error": {"type": "string", "description": (
                "With clickhouse_refused: the ClickHouse error name, e.g. VIOLATED_CONSTRAINT.")},
            "ksp-error-detail": {"type": "string", "maxLength": 2000},
            "ksp-source-topic": {"type": "string"},
            "ksp-source-partition": {"type": "string", "description": "Decimal partition number."},
            "ksp-source-offset": {"type": "string", "description": "Decimal offset."},
        },
    }

    def channel_binding() -> dict[str, Any]:
        return {"kafka": {"partitions": 4, "replicas": 1, **_KAFKA}}

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kundensprechen event streams",
            "version": "1.0.0",
            "description": (
                "Kafka topics between Kundensprechen's services. Every message on "
                f"`{topics.raw}` is a FeedbackEvent (contract version 1) keyed by its `event_id`, the "
                "idempotency key: delivery is at-least-once and consumers store each event_id once. "
                "Topic names can be overridden per deployment (KSP_TOPICS__RAW etc.)."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "kafka:9092", "protocol": "kafka",
                           "description": "Apache Kafka (KSP_KAFKA__BOOTSTRAP_SERVERS)."},
            "embedded": {"host": "127.0.0.1:9092", "protocol": "kafka",
                         "description": "The embedded Kafka-compatible broker for development."},
        },
        "channels": {
            "raw": {
                "address": topics.raw,
                "description": "Feedback events as touchpoints send them (via ingest or the Kafka emitter).",
                "messages": {"feedbackEvent": {"$ref": "#/components/messages/FeedbackEvent"}},
                "bindings": channel_binding(),
            },
            "scored": {
                "address": topics.scored,
                "description": "One scored event per raw event.",
                "messages": {"scoredEvent": {"$ref": "#/components/messages/ScoredEvent"}},
                "bindings": channel_binding(),
            },
            "deadletter": {
                "address": topics.deadletter,
                "description": "Raw messages that could not be parsed, validated or scored; the "
                               "reason is in the headers, the value is the original bytes.",
                "messages": {"deadLetter": {"$ref": "#/components/messages/DeadLetter"}},
                "bindings": channel_binding(),
            },
        },
        "operations": {
            "ingestSendsFeedback": {
                "action": "send", "channel": {"$ref": "#/channels/raw"},
                "summary": "Ingest publishes accepted events (acks=all) before answering 202.",
                "messages": [{"$ref": "#/channels/raw/messages/feedbackEvent"}],
            },
            "scoringReceivesFeedback": {
                "action": "receive", "channel": {"$ref": "#/channels/raw"},
                "messages": [{"$ref": "#/channels/raw/messages/feedbackEvent"}],
            },
            "scoringSendsScored": {
                "action": "send", "channel": {"$ref": "#/channels/scored"},
                "messages": [{"$ref": "#/channels/scored/messages/scoredEvent"}],
            },
            "scoringSendsDeadLetters": {
                "action": "send", "channel": {"$ref": "#/channels/deadletter"},
                "messages": [{"$ref": "#/channels/deadletter/messages/deadLetter"}],
            },
            "sinkReceivesScored": {
                "action": "receive", "channel": {"$ref": "#/channels/scored"},
                "summary": "The ClickHouse sink stores each event_id once.",
                "messages": [{"$ref": "#/channels/scored/messages/scoredEvent"}],
            },
        },
        "components": {
            "messages": {
                "FeedbackEvent": _message("FeedbackEvent", "Feedback event (v1)",
                                          "What a touchpoint sent, with event_id set.",
                                          {"$ref": "#/components/schemas/FeedbackEvent"},
                                          "The event_id (UTF-8).", REDRIVEN_HEADERS),
                "ScoredEvent": _message("ScoredEvent", "Scored event (v1)",
                                        "A feedback event plus normalised scores.",
                                        {"$ref": "#/components/schemas/ScoredEvent"},
                                        "The event_id (UTF-8).", REDRIVEN_HEADERS),
                "DeadLetter": _message("DeadLetter", "Dead letter",
                                       "The original message, unchanged: raw, or scored when the "
                                       "ClickHouse sink dead-lettered it (see ksp-source-topic).",
                                       {"description": "The original message value (any bytes)."},
                                       "The original message key.", dead_headers),
            },
            "schemas": _schemas(),
        },
    }


def render() -> str:
    return "# Generated by `python -m services.ingest.asyncapi`; do not edit by hand.\n" + yaml.safe_dump(
        build(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
