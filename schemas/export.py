"""Export the contracts as JSON Schema files (checked to be current by a test)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.aggregate import QualityAggregate
from schemas.alert import Alert
from schemas.cases import Case, CaseEvent
from schemas.feedback import FeedbackEvent
from schemas.scored import ScoredEvent

CONTRACTS: dict[str, type[BaseModel]] = {
    "feedback_event.v1.json": FeedbackEvent,
    "scored_event.v1.json": ScoredEvent,
    "quality_aggregate.v1.json": QualityAggregate,
    "alert.v1.json": Alert,
    "case.v1.json": Case,
    "case_event.v1.json": CaseEvent,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export_json_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        path = out / name
        path.write_text(render(model))
        written.append(path)
    return written
