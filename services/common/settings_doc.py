"""The settings reference: every `KSP_*` environment variable of every service, from the models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    text = "" if value is None else str(value)
    return f"`{text}`" if text else ""


def rows(model: type[BaseModel], prefix: str = "KSP_") -> list[tuple[str, str, str]]:
    """(variable, default, description) for every leaf field; nested models use `__`."""
    found: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.extend(rows(annotation, f"{prefix}{name.upper()}__"))
            continue
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        found.append((f"{prefix}{name.upper()}", _default(field), description))
    return found


def reference(models: dict[str, type[BaseSettings]]) -> str:
    lines = ["# Settings reference", "",
             "Generated from the settings models by `ksp settings` (a test keeps it current).",
             "Every variable can also be set in a profile file (`deploy/profiles/*.env`, chosen by `KSP_PROFILE`).", ""]
    for service, model in models.items():
        lines += [f"## {service}", "", "| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{var}` | {default} | {text} |" for var, default, text in rows(model)]
        lines.append("")
    return "\n".join(lines)


def service_models() -> dict[str, type[BaseSettings]]:
    from services.alerts.settings import AlertsSettings
    from services.ingest.settings import IngestSettings
    from services.scoring.settings import ScoringSettings

    return {"ingest": IngestSettings, "scoring": ScoringSettings, "alerts": AlertsSettings}
