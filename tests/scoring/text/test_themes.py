"""Themes from the versioned taxonomy: whole-word and compound matching, clause polarity."""

from __future__ import annotations

from pathlib import Path

from services.scoring.text import analyse
from services.scoring.text.themes import load_taxonomy

REQUIRED = {
    "wait_time",
    "staff_friendliness",
    "competence",
    "price_billing",
    "product_quality",
    "cleanliness",
    "availability_reachability",
    "digital_experience",
    "delivery",
    "punctuality",
}


def test_the_packaged_taxonomy_is_versioned_and_covers_the_required_themes_in_de_and_en() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.version
    assert REQUIRED <= set(taxonomy.theme_ids)
    assert {"de", "en"} <= set(taxonomy.matchers)


def test_terms_match_whole_words_only() -> None:
    assert "price_billing" in analyse("The rate was too high", "en").themes
    assert "price_billing" not in analyse("We travelled separately", "en").themes
    assert "staff_friendliness" not in analyse("What kind of seat is this", "en").themes


def test_german_compounds_and_inflections_match() -> None:
    assert "wait_time" in analyse("Die Wartezeit war lang", "de").themes
    assert "wait_time" in analyse("Lange Hotlinewartezeiten", "de").themes
    assert "punctuality" in analyse("Zugverspätungen ohne Ende", "de").themes
    assert "punctuality" in analyse("Der Zug hat sich verspätet", "de").themes
    assert "cleanliness" in analyse("Die Toiletten waren verdreckt", "de").themes


def test_negative_themes_are_scoped_to_the_clause() -> None:
    result = analyse("Das Personal war sehr freundlich, aber die Wartezeit war furchtbar.", "de")
    assert set(result.themes) == {"staff_friendliness", "wait_time"}
    assert result.negative_themes == ["wait_time"]

    result = analyse("The staff was not friendly. The app works great.", "en")
    assert "staff_friendliness" in result.negative_themes
    assert "digital_experience" in result.themes
    assert "digital_experience" not in result.negative_themes


def test_themes_are_reported_in_taxonomy_order_without_duplicates() -> None:
    result = analyse("delay, delay, delayed again and the wait was long", "en")
    order = list(load_taxonomy().theme_ids)
    assert result.themes == sorted(set(result.themes), key=order.index)


def test_a_custom_taxonomy_can_be_loaded_from_a_path(tmp_path: Path) -> None:
    custom = tmp_path / "taxonomy.yaml"
    custom.write_text(
        'version: "test-1"\n'
        "themes:\n"
        "  parking:\n"
        "    terms: {en: [parking, car park], de: [parkplatz*, '*parkplatz']}\n",
        encoding="utf-8",
    )
    assert load_taxonomy(custom).version == "test-1"
    assert analyse("The parking was terrible", "en", taxonomy=custom).negative_themes == ["parking"]
    assert analyse("Kein Kundenparkplatz", "de", taxonomy=custom).themes == ["parking"]
