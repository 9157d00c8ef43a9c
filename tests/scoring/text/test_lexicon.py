"""Lexicon lookup: exact entry first, then the longest prefix entry, the longest suffix entry,
then an infix entry (lexicon.py). The affixes are found through an index; these tests hold it
to the plain definition, a scan over every length of the word."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.text.lexicon import build_lexicon, load_lexicon

# Two letters and short stems make affixes collide, nest and override each other often.
STEMS = st.text(alphabet="ab", min_size=1, max_size=7)
AFFIXES = st.text(alphabet="ab", min_size=2, max_size=5)
TERMS = st.one_of(STEMS, AFFIXES.map(lambda s: s + "*"), AFFIXES.map(lambda s: "*" + s),
                  AFFIXES.map(lambda s: "*" + s + "*"))
ENTRIES = st.lists(st.tuples(TERMS, st.integers(0, 9)), max_size=30)


def scan(lex: Any, word: str) -> tuple[Any, Any, Any]:
    """(exact, longest prefix, longest suffix) by trying every length, as the docstring says."""
    exact = lex.exact.get(word)
    prefix = next((lex.prefix[word[:k]] for k in range(len(word), 2, -1)
                   if word[:k] in lex.prefix), None)
    suffix = next((lex.suffix[word[k:]] for k in range(len(word) - 2) if word[k:] in lex.suffix),
                  None)
    return exact, prefix, suffix


@settings(max_examples=400, deadline=None)
@given(entries=ENTRIES, words=st.lists(STEMS, min_size=1, max_size=10))
def test_indexed_lookup_finds_what_a_scan_over_all_lengths_finds(
    entries: list[tuple[str, int]], words: list[str]
) -> None:
    lex = build_lexicon(entries)
    stems = [term.strip("*") for term, _ in entries]
    for word in words + [a + b for a in stems for b in stems]:  # words the affixes fit
        exact, prefix, suffix = scan(lex, word)
        infix = [v for part, v in lex.infix.items() if part in word]
        first = next((v for v in (exact, prefix, suffix) if v is not None), None)
        assert lex.lookup(word) == (first if first is not None else next(iter(infix), None))
        assert lex.lookup_all(word) == tuple(
            v for v in (exact, prefix, suffix) if v is not None) + tuple(infix)


def test_affixes_shorter_than_three_letters_never_match() -> None:
    lex = build_lexicon([("ab*", 1), ("*bc", 2)])
    assert lex.lookup("abxyz") is None and lex.lookup("xyzbc") is None


def test_later_entries_override_earlier_ones_and_longer_affixes_win() -> None:
    lex = build_lexicon([("verspät*", -2.0), ("verspätungsfrei*", 1.0), ("verspät*", -1.5)])
    assert lex.lookup("verspätungen") == -1.5
    assert lex.lookup("verspätungsfreie") == 1.0


def test_the_shipped_german_lexicon_reads_compounds_by_their_head() -> None:
    lex = load_lexicon("sentiment_de.tsv")
    assert lex.lookup("zugverspätung") == lex.lookup("verspätung") < 0
