"""Sentiment: -1..1 with a label, per-language lexicons, negation, intensity and contrast."""

from __future__ import annotations

import pytest

from schemas.scored import SentimentLabel
from services.scoring.text import analyse

POS, NEU, NEG = SentimentLabel.positive, SentimentLabel.neutral, SentimentLabel.negative


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The staff were friendly and the flight was on time. Great job!", POS),
        ("Thank you so much for the quick help, you are amazing", POS),
        ("Worst airline ever. Flight delayed 3 hours and nobody helped.", NEG),
        ("I have been on hold for two hours, this is ridiculous", NEG),
        ("My bag was lost and customer service hung up on me", NEG),
        ("What time does the flight to Boston leave tomorrow?", NEU),
        ("The app is not good", NEG),
        ("Thanks for the delay, really appreciated", NEG),  # politeness is no praise here
    ],
)
def test_english_sentiment(text: str, expected: SentimentLabel) -> None:
    assert analyse(text, "en").sentiment_label is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Super Service, sehr freundliches und kompetentes Personal!", POS),
        ("Der Zug war pünktlich und sauber, alles bestens.", POS),
        ("Schon wieder 40 Minuten Verspätung und keine Durchsage. Eine Frechheit!", NEG),
        ("Unfreundlicher Schaffner, dreckige Toiletten, totales Chaos.", NEG),
        ("Zugausfall, schon wieder!", NEG),
        ("Das gefällt mir nicht", NEG),  # negation after the verb
        ("Der Kaffee war nicht gut", NEG),
        ("Wann fährt morgen der erste Zug nach Hamburg?", NEU),
        ("Danke für die Verspätung.", NEG),  # politeness is no praise here
    ],
)
def test_german_sentiment(text: str, expected: SentimentLabel) -> None:
    assert analyse(text, "de").sentiment_label is expected


def test_negation_flips_polarity() -> None:
    assert analyse("The service was good", "en").sentiment > 0
    assert analyse("The service was not good", "en").sentiment < 0
    assert analyse("Das Personal war freundlich", "de").sentiment > 0
    assert analyse("Das Personal war nicht freundlich", "de").sentiment < 0
    assert analyse("Das Personal war gar nicht freundlich", "de").sentiment < 0


def test_intensifiers_strengthen_and_contrast_shifts_weight() -> None:
    assert analyse("sehr unfreundlich", "de").sentiment < analyse("unfreundlich", "de").sentiment
    assert analyse("very helpful", "en").sentiment > analyse("helpful", "en").sentiment
    # the clause after "aber"/"but" weighs more than the one before
    assert analyse("Nettes Personal, aber 2 Stunden Verspätung", "de").sentiment < 0
    assert analyse("The delay was annoying but the crew was fantastic", "en").sentiment > 0


def test_english_lexicon_never_scores_german_text() -> None:
    # English sentiment words inside a German comment carry no weight
    assert analyse("terrible awful horrible disappointing", "de").sentiment == 0
    assert analyse("excellent amazing wonderful", "de").sentiment == 0


def test_german_lexicon_never_scores_english_text() -> None:
    assert analyse("furchtbar katastrophal unfreundlich", "en").sentiment == 0


def test_languages_without_a_lexicon_are_scored_by_emoji_only() -> None:
    assert analyse("C'est horrible, le train est en retard", "fr").sentiment == 0
    assert analyse("Le train est en retard 😡", "fr").sentiment_label is NEG


def test_long_news_like_texts_with_passing_mentions_stay_neutral() -> None:
    filler = "Die Stadt plant für das kommende Jahr einen neuen Bahnhof am Rand der Altstadt. "
    text = filler * 8 + "Der Bürgermeister sprach von einer guten Lösung."
    assert analyse(text, "de").sentiment_label is NEU
