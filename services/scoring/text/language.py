"""Offline language identification from function words, for short texts.

Counts hand-written stop words per language; German umlauts/ß add a German vote, since a short
German comment ("Zugausfall, schon wieder!") may hold no function word. Returns 'und' when
no language has evidence or the evidence is a tie. Good for de/en; others best effort.
"""

from __future__ import annotations

from functools import lru_cache

from services.scoring.text.lexicon import load_lexicon, load_yaml
from services.scoring.text.tokens import Token

UNDETERMINED = "und"
SUPPORTED = ("de", "en")  # languages with a sentiment lexicon
_UMLAUT_VOTE = 1.0


@lru_cache(maxsize=1)
def _stopwords() -> dict[str, frozenset[str]]:
    return {lang: frozenset(words) for lang, words in load_yaml("stopwords.yaml").items()}


@lru_cache(maxsize=1)
def _votes() -> dict[str, tuple[tuple[str, float], ...]]:
    """word -> the votes it casts: one per language listing it as a stop word, half a vote per
    language whose sentiment lexicon has it (helps one-word texts). One table, so a text is
    scored in a single pass over its words."""
    votes: dict[str, list[tuple[str, float]]] = {}
    for lang, words in _stopwords().items():
        for w in words:
            votes.setdefault(w, []).append((lang, 1.0))
    for lang in SUPPORTED:
        for w in load_lexicon(f"sentiment_{lang}.tsv").exact:
            votes.setdefault(w, []).append((lang, 0.5))
    return {w: tuple(v) for w, v in votes.items()}


def normalise_code(language: str | None) -> str | None:
    """'de-DE', 'DE', 'de_AT' -> 'de'; '' or None -> None (detect)."""
    if not language or not language.strip():
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    return code if code.isalpha() and 2 <= len(code) <= 3 else UNDETERMINED


def detect_language(tokens: list[Token]) -> str:
    """ISO 639-1 code of the dominant language of the tokens, or 'und'."""
    words = [t.text for t in tokens if t.kind == "word"][:200]  # the head is enough
    if not words:
        return UNDETERMINED
    scores = dict.fromkeys(_stopwords(), 0.0)
    table = _votes()
    for w in words:
        for lang, vote in table.get(w, ()):
            scores[lang] += vote
    text = "".join(words)
    if not text.isascii() and any(ch in text for ch in "äöüß"):
        scores["de"] += _UMLAUT_VOTE
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top == 0 or top == second:
        return UNDETERMINED
    return best
