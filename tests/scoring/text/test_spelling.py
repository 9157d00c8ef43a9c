"""Respelling of words the lexicon does not know: German typed without umlauts, and letters
repeated for emphasis. Known words keep their own values."""

from __future__ import annotations

import pytest

from services.scoring.text import analyse
from services.scoring.text.lexicon import load_lexicon
from services.scoring.text.spelling import folds_for, lookup_respelled, variants


@pytest.mark.parametrize(
    ("typed", "meant", "lang"),
    [
        ("Schon wieder Verspaetung", "Schon wieder Verspätung", "de"),
        ("Die Zugbegleiterin war unfreundlich und muede", "Die Zugbegleiterin war unfreundlich und müde", "de"),
        ("Suuuuper Service", "Super Service", "de"),
        ("sooo goooood", "sooo good", "en"),
    ],
)
def test_respelt_words_score_like_their_usual_spelling(typed: str, meant: str, lang: str) -> None:
    assert analyse(typed, lang).sentiment == analyse(meant, lang).sentiment != 0


@pytest.mark.parametrize("lang", ["de", "en"])
def test_words_the_lexicon_knows_are_never_respelled(lang: str) -> None:
    lex = load_lexicon(f"sentiment_{lang}.tsv")
    for word, value in lex.exact.items():
        assert lookup_respelled(lex, word, lang) == value


def test_umlaut_folds_are_german_and_only_for_ascii_words() -> None:
    assert folds_for("en") == ()
    assert variants("verspaetung", folds_for("de")) == ["verspätung"]
    assert variants("verspaetung", folds_for("en")) == []
    assert variants("grüe", folds_for("de")) == []  # not typed in ASCII: nothing to fold
    assert variants("neeeein", ()) == ["neein", "nein"]
