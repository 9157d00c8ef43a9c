"""Normalisation and tokens: the cheap paths (a text without URL or mention marks skips the
noise regex; words are tried before emoticons) give what the plain definitions give."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.text import analyse
from services.scoring.text.tokens import _NOISE, MAX_CHARS, normalise, tokenise

# Pieces of URLs, mentions and e-mail addresses, words and emoticons, in any order.
PIECES = ["http", "https", "://", ":/", "www", ".", "@", "a", "Ü", "de", " ", "\n", "8", ";)", "/"]
NOISY = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=NOISY)
def test_normalise_drops_urls_mentions_and_addresses_as_the_noise_regex_does(text: str) -> None:
    assert normalise(text) == _NOISE.sub(" ", unicodedata.normalize("NFC", text))


def test_noise_is_replaced_and_plain_text_kept() -> None:
    assert normalise("@DB_Bahn danke https://t.co/x mail a@b.de") == "  danke   mail  "
    assert normalise("Zug fällt aus :(") == "Zug fällt aus :("


def test_emoticons_numbers_and_words_next_to_each_other() -> None:
    kinds = [(t.text, t.kind) for t in tokenise("8) 8 ;) ;x:( <3 Gleis8 x8D ^^ ÖBB's")]
    assert kinds == [("8)", "emo"), ("8", "num"), (";)", "emo"), (";", "punct"), ("x", "word"),
                     (":(", "emo"), ("<3", "emo"), ("gleis", "word"), ("8", "num"),
                     ("x", "word"), ("8d", "emo"), ("^^", "emo"), ("öbb's", "word")]
    assert [t.upper for t in tokenise("ÖBB Zug A")] == [True, False, False]


def test_only_the_head_of_a_very_long_text_is_analysed() -> None:
    head = "Der Zug war pünktlich und sauber. " * (MAX_CHARS // 34 + 1)
    text = head[:MAX_CHARS] + " Eine Katastrophe, unverschämt, nie wieder!" * 20
    assert analyse(text, "de") == analyse(text[:MAX_CHARS], "de")
