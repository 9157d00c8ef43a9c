"""Send simulated feedback to the ingest API at a steady rate (batched once a tick)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from services.simulator.traffic import Incident, make_event

TICK_S = 0.25


def run_simulation(*, url: str, rate: float, duration: float | None, seed: int, incident_after: float,
                   api_key: str | None, echo: Callable[[str], None], incident_unit: str = "hamburg-altona",
                   touchpoints: list[str] | None = None) -> int:
    rng = random.Random(seed)
    incident = Incident(unit=incident_unit, starts_after_s=incident_after)
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    sent, started, owed, reported = 0, time.monotonic(), 0.0, 0.0
    echo(f"simulating {rate:g} events/s to {url}; incident at unit {incident.unit} after {incident_after:g} s")
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while duration is None or time.monotonic() - started < duration:
            owed += rate * TICK_S
            batch = [make_event(rng, datetime.now(UTC), time.monotonic() - started, incident, touchpoints)
                     for _ in range(int(owed))]
            owed -= len(batch)
            if batch:
                sent += _post(client, batch, echo)
            if time.monotonic() - reported >= 30:
                reported = time.monotonic()
                echo(f"simulator: {sent} events sent in {reported - started:.0f} s")
            time.sleep(TICK_S)
    echo(f"sent {sent} events")
    return sent


def _post(client: httpx.Client, batch: list[dict], echo: Callable[[str], None]) -> int:
    try:
        response = client.post("/v1/feedback", json=batch)
    except httpx.HTTPError as exc:
        echo(f"ingest unreachable: {exc!r}")
        return 0
    if response.status_code >= 300:
        echo(f"ingest answered {response.status_code}: {response.text[:200]}")
        return 0
    return len(batch)
