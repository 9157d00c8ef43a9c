"""The text rows of the bench report: in-sample figures labelled as such, cross-validated ones
against the targets."""

from __future__ import annotations

from typing import Any

from bench.report import measures


def _lang(acc: float, f1: float, cv_acc: float, cv_f1: float) -> dict[str, Any]:
    held_out = {m: {"mean": v, "sd": 0.02, "min": v - 0.03, "max": v + 0.03} for m, v in
                (("accuracy", cv_acc), ("macro_f1", cv_f1))}
    return {"file": "x.csv", "n": 100, "accuracy": acc, "macro_f1": f1, "vader_macro_f1": None,
            "majority_baseline": {"macro_f1": 0.26}, "latency_ms": {"median": 0.1, "p99": 1.0},
            "cpu_ms": {"median": 0.1, "p99": 0.9},
            "cross_validation": {"k": 5, "objective": "maximise accuracy", "grid_points": 576,
                                 "held_out": held_out, "folds_choosing_shipped": 4,
                                 "in_sample_shipped": {"accuracy": acc, "macro_f1": f1}}}


def test_cross_validated_rows_carry_the_targets_and_the_in_sample_baseline() -> None:
    text = {"de": _lang(0.7515, 0.5565, 0.744, 0.5563), "en": _lang(0.68, 0.656, 0.68, 0.655)}
    rows = {r["measure"]: r for r in measures({"text": {"result": text}})}
    de_acc = rows["text de: accuracy, 5-fold cross-validated"]
    assert (de_acc["result"], de_acc["baseline"], de_acc["target"], de_acc["met"]) == (0.744, 0.7515, ">= 0.75", False)
    assert de_acc["baseline_name"] == "in-sample, shipped tuning" and "4/5 folds" in de_acc["note"]
    assert rows["text de: macro-F1, 5-fold cross-validated"]["met"] is True
    assert rows["text en: macro-F1, 5-fold cross-validated"]["met"] is True
    assert rows["text en: accuracy, 5-fold cross-validated"]["met"] is None  # no target
    assert any(name.startswith("text de: macro-F1, in-sample") for name in rows)
    cpu = rows["text de: CPU per comment p99 (one core)"]
    assert (cpu["result"], cpu["target"], cpu["met"]) == (0.9, "<= 5", True)


def test_an_evaluation_without_cross_validation_still_reports_the_in_sample_rows() -> None:
    de = _lang(0.75, 0.55, 0.7, 0.5)
    del de["cross_validation"]
    names = [r["measure"] for r in measures({"text": {"result": {"de": de}}})]
    assert not [n for n in names if "cross-validated" in n] and len(names) == 3  # quality, latency, CPU
