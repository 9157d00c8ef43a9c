"""Text normalisation, tokens and clauses: the shared ground of every analyser.

Everything here is a pure function of its input; regexes are compiled once at import.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

# Mentions, URLs and e-mail addresses carry no sentiment and would otherwise leak words
# such as "united" (from @united) into the lexicon lookup.
_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+\.\S+|@\w+", re.UNICODE)
# Each alternative of _NOISE needs one of these: a text without any cannot match, and the
# check is far cheaper than the regex (whose `\S+@` backtracks through every word).
_NOISE_MARKS = ("@", "://", "www.")
# Words (letters, with inner apostrophes/hyphens), numbers, runs of !/?, and emoticons.
# Words come first: they are most tokens, and no emoticon starts with a letter, so the order
# changes no token but halves the regex's time on long texts. Emoticons stay before numbers
# and punctuation ("8)", ";)").
_TOKEN = re.compile(
    r"(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
    r"|(?P<emo>[:;=8][\-o']?[()\[\]dDpP/\\|*]+|[()][\-o']?[:;=]|<3|>_<|\^\^|\^_\^)"
    r"|(?P<num>\d+(?:[.,:]\d+)*)"
    r"|(?P<punct>[!?]+|[.;\n]|,)",
    re.UNICODE,
)
# Clause boundaries: sentence punctuation, semicolons, commas, line breaks.
_CLAUSE_PUNCT = frozenset({".", ";", ",", "\n", "!", "?"})
# Beyond this only the head is analysed: the cost of a text grows with its length, and the
# slowest 1 % of German comments are the news pages cut here, so this bounds the p99 (target
# <= 5 ms CPU per comment). Long texts are damped towards neutral anyway (sentiment.Tuning.
# long_tokens). 2,500 rather than 3,000 cut the German p99 by ~15 % beyond what faster code
# gave (text-1.1.0), for one GermEval label of 2,555 (held-out accuracy and macro-F1 -0.0004).
MAX_CHARS = 2_500
# Candidate pictograph ranges; each candidate is confirmed by its Unicode category.
_EMOJI_CANDIDATE = re.compile(
    "[\u2190-\u21ff\u2300-\u23ff\u2460-\u27bf\u2900-\u297f\u2b00-\u2bff\U0001f000-\U0001faff]"
)


class Token(NamedTuple):  # a NamedTuple: ~3x cheaper to build than a frozen dataclass
    text: str  # lower-cased
    kind: str  # emo | word | num | punct | emoji
    start: int  # character offset in the normalised text
    upper: bool = False  # written in capitals (shouting), for words of 2+ letters


_new_tuple = tuple.__new__


def normalise(text: str) -> str:
    """NFC-normalise, cap the length and drop mentions/URLs (replaced by a space)."""
    text = unicodedata.normalize("NFC", text[:MAX_CHARS])
    if not any(mark in text for mark in _NOISE_MARKS):
        return text
    return _NOISE.sub(" ", text)


def _is_emoji(ch: str) -> bool:
    # Pictographs live in the So (other symbol) category; no emoji table needed.
    return unicodedata.category(ch) == "So"


def tokenise(text: str) -> list[Token]:
    """Tokens of already-normalised text, in order; emoji become one token per symbol."""
    tokens: list[Token] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "word"
        raw = m.group()
        upper = kind == "word" and len(raw) > 1 and raw.isupper()
        # tuple.__new__ skips NamedTuple's Python-level __new__: a fifth of tokenise's time
        # on long texts, for the same Token.
        fields = (raw.lower().replace("’", "'"), kind, m.start(), upper)
        tokens.append(_new_tuple(Token, fields))
    if not text.isascii():
        emoji = [
            Token(m.group(), "emoji", m.start())
            for m in _EMOJI_CANDIDATE.finditer(text)
            if _is_emoji(m.group())
        ]
        if emoji:
            tokens.extend(emoji)
            tokens.sort(key=lambda t: t.start)
    return tokens


def split_clauses(tokens: list[Token], breakers: frozenset[str]) -> list[list[Token]]:
    """Split at punctuation and at the given contrast/conjunction words (kept as clause head).

    Clauses scope negation: "not bad, but slow" negates "bad" only.
    """
    clauses: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.kind == "punct" and (tok.text[0] in _CLAUSE_PUNCT):
            if clauses[-1]:
                clauses[-1].append(tok)  # keep !/? so the clause can use them
                clauses.append([])
            continue
        if tok.kind == "word" and tok.text in breakers and clauses[-1]:
            clauses.append([])
        clauses[-1].append(tok)
    return [c for c in clauses if c]
