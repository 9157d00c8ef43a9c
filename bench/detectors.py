"""Aggregate-drop detector vs the naive rule: `services.alerts.detectors.simulate.simulate`."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

QUICK = {"in_control_days": 200, "fa_streams": 4, "change_reps": 40}


def run(quick: bool = False, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        module = importlib.import_module("services.alerts.detectors.simulate")
    except ImportError as exc:
        return {"available": False, "reason": f"services.alerts.detectors.simulate not importable: {exc}"}
    accepted = inspect.signature(module.simulate).parameters
    wanted = kwargs if kwargs is not None else (QUICK if quick else {})
    kwargs = {k: v for k, v in wanted.items() if k in accepted}
    try:
        return {"available": True, "arguments": kwargs or "defaults", "result": module.simulate(**kwargs)}
    except Exception as exc:  # noqa: BLE001 - another engineer's module in progress: report, do not crash
        return {"available": False, "reason": f"simulate() failed: {exc!r}"}
