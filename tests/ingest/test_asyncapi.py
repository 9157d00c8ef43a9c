"""docs/asyncapi.yaml is AsyncAPI 3, generated from the contracts, and its references resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from schemas.feedback import FeedbackEvent
from services.ingest.asyncapi import build, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_file_is_current():
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is stale: run `python -m services.ingest.asyncapi > docs/asyncapi.yaml`")


def test_asyncapi_document_shape_and_refs():
    doc = yaml.safe_load(DOC.read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    assert {c["address"] for c in doc["channels"].values()} == {
        "ksp.feedback.raw", "ksp.feedback.scored", "ksp.feedback.deadletter"}
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    assert doc["components"]["schemas"]["FeedbackEvent"] == build()["components"]["schemas"]["FeedbackEvent"]
    assert doc["components"]["schemas"]["FeedbackEvent"]["required"] == [
        n for n, f in FeedbackEvent.model_fields.items() if f.is_required()]
