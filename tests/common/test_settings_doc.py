"""Every knob is documented: the settings reference is generated, current and complete."""

from __future__ import annotations

from pathlib import Path

from services.common.settings_doc import reference, rows, service_models

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_the_settings_reference_is_current() -> None:
    assert REFERENCE.read_text().rstrip() == reference(service_models()).rstrip(), "run: ksp settings > docs/settings.md"


def test_every_setting_of_every_service_has_a_description() -> None:
    undocumented = [var for model in service_models().values() for var, _, text in rows(model) if not text]
    assert undocumented == []
