"""Pure generation of feedback events; an incident degrades one unit after a given time."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

TOUCHPOINTS = ["web", "app", "call_centre", "store", "survey_email", "chat", "kiosk"]
UNITS = ["berlin-mitte", "hamburg-altona", "muenchen-zentrum", "koeln-dom", "online"]
SEGMENTS = ["private", "business"]

COMMENTS = {
    "promoter": {
        "de": ["Sehr freundliche Beratung, alles schnell erledigt.", "Top Service, gerne wieder!",
               "Kompetent und hilfsbereit, ich empfehle euch weiter."],
        "en": ["Friendly staff and quick help, thank you!", "Great service, I will recommend you.",
               "Easy to use app and fast delivery."],
    },
    "passive": {
        "de": ["Ganz okay, aber die Wartezeit war etwas lang.", "Preis in Ordnung, Lieferung dauerte."],
        "en": ["It was fine, but the wait was a bit long.", "Okay overall, the website is slow."],
    },
    "detractor": {
        "de": ["Unfreundlicher Mitarbeiter und lange Wartezeit.", "Die Rechnung war falsch, sehr ärgerlich.",
               "Niemand erreichbar an der Hotline."],
        "en": ["Rude staff and a long wait.", "The bill was wrong again, very annoying.",
               "Nobody answered the phone for an hour."],
    },
    "incident": {
        "de": ["Über eine Stunde Wartezeit an der Kasse, niemand hilft.", "Schon wieder eine falsche Rechnung, die Preise stimmen nicht."],
        "en": ["Waited over an hour at the counter, nobody helped.", "Another wrong bill, the prices are not what you advertised."],
    },
    "churn": {
        "de": ["Ich kündige meinen Vertrag, das war das letzte Mal.", "Nie wieder, ich wechsle zur Konkurrenz."],
        "en": ["I am cancelling my contract, this was the last time.", "Never again, I'm switching to another provider."],
    },
}


@dataclass(frozen=True)
class Incident:
    unit: str = "hamburg-altona"
    starts_after_s: float = 20.0
    detractor_share: float = 0.7
    churn_share: float = 0.35


def nps_answer(rng: random.Random, detractor_share: float) -> int:
    roll = rng.random()
    if roll < detractor_share:
        return rng.randint(0, 6)
    if roll < detractor_share + 0.3:
        return rng.randint(7, 8)
    return rng.randint(9, 10)


def make_event(rng: random.Random, now: datetime, elapsed_s: float, incident: Incident,
               touchpoints: list[str] | None = None) -> dict[str, Any]:
    unit = rng.choice(UNITS)
    in_incident = unit == incident.unit and elapsed_s >= incident.starts_after_s
    nps = nps_answer(rng, incident.detractor_share if in_incident else 0.2)
    category = "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor"
    if category == "detractor" and in_incident:
        category = "churn" if rng.random() < incident.churn_share else "incident"
    language = rng.choice(["de", "de", "en"])
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "occurred_at": now.isoformat(),
        "touchpoint": rng.choice(touchpoints or TOUCHPOINTS),
        "source": "demo-simulator",
        "unit": unit,
        "segment": rng.choice(SEGMENTS),
        # a pool of regulars gives feedback across touchpoints, so timelines have history
        "customer_id": f"c-{rng.randint(1, 300 if rng.random() < 0.3 else 5000):05d}",
        "responses": [{"metric": "nps", "value": nps}],
    }
    if rng.random() < 0.6:
        csat = round(nps / 2.5 + 1 + rng.gauss(0, 0.6))
        event["responses"].append({"metric": "csat", "value": max(1, min(5, csat))})
    if rng.random() < 0.4:
        ces = round(nps / 10 * 6 + 1 + rng.gauss(0, 0.8))
        event["responses"].append({"metric": "ces", "value": max(1, min(7, ces))})
    if rng.random() < 0.7:
        event["comment"] = {"text": rng.choice(COMMENTS[category][language])}
    return event
