"""Language identification: offline, on short texts, never raising."""

from __future__ import annotations

import pytest

from services.scoring.text import analyse


@pytest.mark.parametrize(
    "text",
    [
        "Der Zug war schon wieder zu spät.",
        "Ich bin sehr zufrieden mit dem Service",
        "Zugausfall, schon wieder!",
        "Danke!",
        "Wartezeit an der Hotline: eine Stunde.",
        "Unfreundliches Personal und dreckige Toiletten",
    ],
)
def test_german_comments_are_detected_as_german(text: str) -> None:
    assert analyse(text).language == "de"


@pytest.mark.parametrize(
    "text",
    [
        "The flight was delayed again.",
        "Thanks!",
        "I will never fly with you again",
        "Great service, friendly staff",
        "@united where is my bag?",
    ],
)
def test_english_comments_are_detected_as_english(text: str) -> None:
    assert analyse(text).language == "en"


@pytest.mark.parametrize("text", ["", "   ", "12345 !!!", "https://example.com", "@someone"])
def test_texts_without_words_are_undetermined(text: str) -> None:
    assert analyse(text).language == "und"


def test_other_languages_are_best_effort() -> None:
    assert analyse("Merci beaucoup pour le service, c'est très bien").language == "fr"
    assert analyse("Muchas gracias por la ayuda, el servicio es muy bueno").language == "es"


def test_a_given_language_skips_detection_and_is_normalised() -> None:
    assert analyse("ok", "de-DE").language == "de"
    assert analyse("ok", "EN_us").language == "en"
    assert analyse("ok", "").language in {"en", "und", "de"}  # empty means: detect


def test_mixed_language_texts_pick_the_dominant_language_without_crashing() -> None:
    result = analyse("Der Zug war pünktlich und das Personal sehr nett, thanks a lot!")
    assert result.language == "de"
    result = analyse("The train was late, typisch Bahn, but the staff were really helpful")
    assert result.language == "en"
