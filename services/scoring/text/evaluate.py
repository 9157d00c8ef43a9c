"""Evaluate the text analyser on the labelled sets in shared/data (evaluation only: the sets
are never shipped). Prints JSON per language: accuracy, macro-F1, per-class F1, majority
baseline, VADER's macro-F1 on the same texts, latency per comment (wall clock, and this
thread's CPU time, which a busy machine does not inflate), first call per text (cold caches).

The top-level accuracy and macro-F1 are in-sample: the shipped decision rules were tuned on
these sets. `cross_validation` holds the honest estimate (5-fold, see crossval.py).

Usage: python -m services.scoring.text.evaluate [DATA_DIR]
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from services.scoring.text.analyse import TEXT_ANALYSER_VERSION, analyse
from services.scoring.text.crossval import cross_validate
from services.scoring.text.tuning import LABELS

DATASETS: dict[str, str] = {"en": "airline_tweets_dev.csv", "de": "germeval2017_dev.csv"}
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "data"
_VADER_POS, _VADER_NEG = 0.05, -0.05  # VADER's documented compound thresholds


def read_set(path: Path) -> list[tuple[str, str]]:
    """(text, gold label) rows of one labelled CSV."""
    with path.open(encoding="utf-8", newline="") as f:
        return [(row["text"], row["sentiment"]) for row in csv.DictReader(f)]


def f1_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Per-class F1 for the three sentiment labels."""
    scores: dict[str, float] = {}
    for c in LABELS:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = sum(p == c for p in pred), sum(g == c for g in gold)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        scores[c] = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return scores


def metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    per_class = f1_scores(gold, pred)
    return {
        "accuracy": round(sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold), 4),
        "macro_f1": round(sum(per_class.values()) / len(per_class), 4),
        "f1": {c: round(v, 4) for c, v in per_class.items()},
    }


def _vader() -> Callable[[str], str] | None:
    """VADER as a baseline, if installed (it is not a runtime dependency)."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    sia = SentimentIntensityAnalyzer()

    def predict(text: str) -> str:
        c = sia.polarity_scores(text)["compound"]
        return "positive" if c >= _VADER_POS else "negative" if c <= _VADER_NEG else "neutral"

    return predict


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(ms: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(ms), 3), "p99": round(_percentile(ms, 0.99), 3)}


def evaluate_set(lang: str, rows: list[tuple[str, str]]) -> dict[str, Any]:
    gold = [g for _, g in rows]
    pred: list[str] = []
    wall: list[float] = []
    cpu: list[float] = []  # this thread's CPU time: what one core spends, whatever the load
    for text, _ in rows:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = analyse(text, lang)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)
        pred.append(result.sentiment_label.value)
    majority = Counter(gold).most_common(1)[0][0]
    vader = _vader()
    report: dict[str, Any] = {"n": len(rows), **metrics(gold, pred)}
    report["majority_baseline"] = {"label": majority, **metrics(gold, [majority] * len(gold))}
    report["vader_macro_f1"] = (
        metrics(gold, [vader(t) for t, _ in rows])["macro_f1"] if vader else None
    )
    report["latency_ms"] = _summary(wall)
    report["cpu_ms"] = _summary(cpu)
    report["cross_validation"] = cross_validate([t for t, _ in rows], gold, lang)
    return report


def evaluate(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, Any]:
    """Metrics per language for each labelled set present in `data_dir`."""
    out: dict[str, Any] = {"analyser_version": TEXT_ANALYSER_VERSION}
    for lang, name in DATASETS.items():
        path = Path(data_dir) / name
        if path.exists():
            analyse("warm-up", lang)  # load lexicons outside the timed loop
            out[lang] = {"file": name, **evaluate_set(lang, read_set(path))}
    return out


if __name__ == "__main__":
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA_DIR
    print(json.dumps(evaluate(data), indent=2))
