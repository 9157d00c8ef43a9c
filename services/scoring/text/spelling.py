"""Other spellings of a word the lexicon does not know, tried in order: per language, ASCII
transliterations folded back (German "verspaetung" -> "verspätung", typed without umlauts),
then letters repeated for emphasis collapsed ("suuuper" -> "suuper" -> "super").

Only a word with no entry of its own is respelled, so every known word keeps its value.
Kept because it raised German 5-fold cross-validated accuracy and macro-F1 (docs/analysts.md);
English labels do not change.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from services.scoring.text.lexicon import Lexicon, load_yaml

Folds = tuple[tuple[str, str], ...]
_ELONGATION = re.compile(r"([^\W\d_])\1{2,}")  # a letter three or more times in a row


@cache
def folds_for(lang: str) -> Folds:
    """The language's ASCII transliterations (modifiers.yaml `ascii_folds`), e.g. ae -> ä."""
    mods = load_yaml("modifiers.yaml").get(lang) or {}
    return tuple((str(k), str(v)) for k, v in (mods.get("ascii_folds") or {}).items())


def variants(word: str, folds: Folds) -> list[str]:
    """The respellings of `word` to try, in order (none equal to `word`)."""
    found: list[str] = []
    if folds and word.isascii():
        folded = word
        for ascii_form, letter in folds:
            folded = folded.replace(ascii_form, letter)
        if folded != word:
            found.append(folded)
    if _ELONGATION.search(word):
        found += [_ELONGATION.sub(r"\1\1", word), _ELONGATION.sub(r"\1", word)]
    return found


@lru_cache(maxsize=200_000)
def lookup_respelled(lex: Lexicon[float], word: str, lang: str) -> float | None:
    """`lex.lookup(word)`, or else the value of its first respelling the lexicon knows."""
    value = lex.lookup(word)
    if value is not None:
        return value
    for variant in variants(word, folds_for(lang)):
        value = lex.lookup(variant)
        if value is not None:
            return value
    return None
