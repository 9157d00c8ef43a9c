"""The demo touchpoint: valid events, and an incident that really degrades one unit."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from schemas import FeedbackEvent
from services.simulator.traffic import Incident, make_event


def detractor_share(events: list[dict], unit: str) -> float:
    at_unit = [e for e in events if e["unit"] == unit]
    return sum(e["responses"][0]["value"] <= 6 for e in at_unit) / len(at_unit)


def test_every_simulated_event_is_a_valid_feedback_event() -> None:
    rng = random.Random(1)
    for elapsed in range(3000):
        FeedbackEvent.model_validate(make_event(rng, datetime.now(UTC), float(elapsed % 60), Incident()))


def test_the_incident_degrades_its_unit_only_after_it_starts() -> None:
    rng, incident = random.Random(2), Incident(starts_after_s=20)
    before = [make_event(rng, datetime.now(UTC), 5.0, incident) for _ in range(4000)]
    after = [make_event(rng, datetime.now(UTC), 25.0, incident) for _ in range(4000)]
    assert detractor_share(before, incident.unit) < 0.3
    assert detractor_share(after, incident.unit) > 0.6
    assert detractor_share(after, "berlin-mitte") < 0.3


def test_the_simulation_is_reproducible_from_its_seed() -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    first = [make_event(random.Random(9), now, 30.0, Incident()) for _ in range(3)]
    again = [make_event(random.Random(9), now, 30.0, Incident()) for _ in range(3)]
    assert first == again
