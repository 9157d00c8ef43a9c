"""Churn, recommend and complaint intents, with negation."""

from __future__ import annotations

import pytest

from services.scoring.text import analyse

CHURN = [
    ("I will cancel my contract", "en"),
    ("I'm going to cancel my subscription tomorrow", "en"),
    ("never again", "en"),
    ("I will never fly with you again", "en"),
    ("Taking my business elsewhere.", "en"),
    ("ich kündige", "de"),
    ("Ich werde meinen Vertrag kündigen", "de"),
    ("ich wechsle zu einem anderen Anbieter", "de"),
    ("nie wieder!", "de"),
    ("Ich fahre nicht mehr mit der Bahn", "de"),
    ("Habe meine Bahncard gekündigt", "de"),
]
NOT_CHURN = [
    ("I would never cancel", "en"),
    ("I won't cancel my contract, you fixed it", "en"),
    ("no reason to switch", "en"),
    ("My flight was cancelled", "en"),
    ("ich werde nicht kündigen", "de"),
    ("Ich kündige nicht.", "de"),
    ("Ich wechsle in Fulda den Zug", "de"),
    ("Der Zug ist ausgefallen", "de"),
]


@pytest.mark.parametrize(("text", "lang"), CHURN)
def test_churn_statements_are_churn(text: str, lang: str) -> None:
    assert analyse(text, lang).churn_intent


@pytest.mark.parametrize(("text", "lang"), NOT_CHURN)
def test_negated_or_unrelated_statements_are_not_churn(text: str, lang: str) -> None:
    assert not analyse(text, lang).churn_intent


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("I'll recommend you to my friends", "en"),
        ("Highly recommend this airline", "en"),
        ("Will definitely fly with you again!", "en"),
        ("gerne wieder", "de"),
        ("Ich empfehle euch weiter", "de"),
        ("Kann ich nur empfehlen!", "de"),
        ("Wir buchen bestimmt wieder", "de"),
    ],
)
def test_recommend_and_repurchase_intent(text: str, lang: str) -> None:
    result = analyse(text, lang)
    assert result.recommend_intent
    assert not result.churn_intent


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("I would not recommend this airline", "en"),
        ("Kann ich nicht empfehlen", "de"),
        ("Würde ich niemandem weiterempfehlen", "de"),
    ],
)
def test_negated_recommendation_is_a_complaint_not_a_recommendation(text: str, lang: str) -> None:
    result = analyse(text, lang)
    assert not result.recommend_intent
    assert result.complaint


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("I want to file a complaint about your staff", "en", True),
        ("Flight delayed 4 hours, unacceptable", "en", True),
        ("What time is boarding?", "en", False),
        ("Great crew, thanks!", "en", False),
        ("Ich möchte mich über den Schaffner beschweren", "de", True),
        ("45 Minuten Verspätung, eine Zumutung", "de", True),
        ("Wann fährt der nächste Zug?", "de", False),
        ("Alles bestens, danke!", "de", False),
    ],
)
def test_complaints(text: str, lang: str, expected: bool) -> None:
    assert analyse(text, lang).complaint is expected
