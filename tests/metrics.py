"""Reading a service's Prometheus exposition in tests, with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample named `name` (a counter's with its `_total`)."""
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(exposition)
            for sample in family.samples if sample.name == name]


def value(exposition: str, name: str) -> float | None:
    """The value of an unlabelled sample, None when the exposition lacks it."""
    return next((v for labels, v in samples(exposition, name) if not labels), None)
