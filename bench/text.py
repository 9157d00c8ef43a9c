"""Text analytics quality and latency: `services.scoring.text.evaluate.evaluate`, when present."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data from the repo root


def run(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    try:
        module = importlib.import_module("services.scoring.text.evaluate")
    except ImportError as exc:
        return {"available": False, "reason": f"services.scoring.text.evaluate not importable: {exc}"}
    if not data_dir.exists():
        return {"available": False, "reason": f"no labelled data at {data_dir}"}
    try:
        return {"available": True, "data_dir": str(data_dir), "result": module.evaluate(data_dir)}
    except Exception as exc:  # noqa: BLE001 - another engineer's module in progress: report, do not crash
        return {"available": False, "reason": f"evaluate() failed: {exc!r}"}
