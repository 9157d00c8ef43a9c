"""Lexicon files: loading (once, cached) and word lookup with compound wildcards.

A lexicon maps terms to values. In the TSV form (`term<TAB>value`) a term may be
  `word`      an exact word (lower-case),
  `adj~`      the adjective with its endings: adj, adj-e, -en, -er, -es, -em,
  `stem*`     any word starting with `stem` (inflection: verspät* -> verspätet, Verspätungen),
  `*head`     any word ending in `head` (German compounds: *chaos -> Bahnchaos),
  `*part*`    any word containing `part` (keep these few: they are tried one by one),
  `two words` a phrase of 2-3 tokens, matched before single words.
Later lines override earlier ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Generic, TypeVar

import yaml

V = TypeVar("V")
_MIN_AFFIX = 3  # shorter wildcard stems would match far too much
_ADJ_ENDINGS = ("", "e", "en", "er", "es", "em")
MAX_PHRASE = 3


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, so lookups can be cached
class Lexicon(Generic[V]):
    exact: dict[str, V] = field(default_factory=dict)
    prefix: dict[str, V] = field(default_factory=dict)
    suffix: dict[str, V] = field(default_factory=dict)
    infix: dict[str, V] = field(default_factory=dict)
    phrases: dict[tuple[str, ...], V] = field(default_factory=dict)
    phrase_heads: set[str] = field(default_factory=set)  # first words of phrases: fast skip
    # Affixes by their outer _MIN_AFFIX letters (a prefix's first, a suffix's last), longest
    # first: a word then tries only the few affixes that can match it, not each of its lengths.
    prefix_index: dict[str, list[str]] = field(default_factory=dict)
    suffix_index: dict[str, list[str]] = field(default_factory=dict)

    def add(self, term: str, value: V) -> None:
        term = term.strip().lower()
        if " " in term:
            words = tuple(term.split())
            self.phrases[words[:MAX_PHRASE]] = value
            self.phrase_heads.add(words[0])
        elif term.startswith("*") and term.endswith("*") and len(term) > 2:
            self.infix[term.strip("*")] = value
        elif term.endswith("*"):
            self.prefix[term[:-1]] = value
            _index(self.prefix_index, term[:-1], term[:_MIN_AFFIX])
        elif term.startswith("*"):
            self.suffix[term[1:]] = value
            _index(self.suffix_index, term[1:], term[-_MIN_AFFIX:])
        elif term.endswith("~"):
            for ending in _ADJ_ENDINGS:
                self.exact[term[:-1] + ending] = value
        else:
            self.exact[term] = value

    def lookup(self, word: str) -> V | None:
        return _lookup(self, word)  # type: ignore[return-value]

    def lookup_all(self, word: str) -> tuple[V, ...]:
        """Every kind of entry that matches (exact, longest prefix, longest suffix, infix):
        a compound such as 'Hotlinewartezeiten' belongs to both of its parts."""
        return _lookup_all(self, word)  # type: ignore[return-value]

    def phrase_at(self, words: list[str], i: int) -> tuple[int, V] | None:
        """The longest phrase starting at words[i]: (its length, value), or None."""
        if words[i] not in self.phrase_heads:
            return None
        for n in range(min(MAX_PHRASE, len(words) - i), 1, -1):
            value = self.phrases.get(tuple(words[i : i + n]))
            if value is not None:
                return n, value
        return None


def _index(index: dict[str, list[str]], affix: str, key: str) -> None:
    """File `affix` under `key`, longest first; shorter affixes never match (_MIN_AFFIX)."""
    if len(affix) < _MIN_AFFIX:
        return
    bucket = index.setdefault(key, [])
    if affix not in bucket:
        bucket.append(affix)
        bucket.sort(key=len, reverse=True)


def _longest_prefix(lex: Lexicon[Any], word: str) -> str | None:
    for affix in lex.prefix_index.get(word[:_MIN_AFFIX], ()):
        if word.startswith(affix):
            return affix
    return None


def _longest_suffix(lex: Lexicon[Any], word: str) -> str | None:
    for affix in lex.suffix_index.get(word[-_MIN_AFFIX:], ()):
        if word.endswith(affix):
            return affix
    return None


@lru_cache(maxsize=200_000)
def _lookup(lex: Lexicon[Any], word: str) -> Any:
    """Exact match first, then the longest matching prefix, then suffix, then infix entry."""
    if word in lex.exact:
        return lex.exact[word]
    prefix = _longest_prefix(lex, word)
    if prefix is not None:
        return lex.prefix[prefix]
    suffix = _longest_suffix(lex, word)
    if suffix is not None:
        return lex.suffix[suffix]
    for part, value in lex.infix.items():
        if part in word:
            return value
    return None


@lru_cache(maxsize=200_000)
def _lookup_all(lex: Lexicon[Any], word: str) -> tuple[Any, ...]:
    found: list[Any] = []
    if word in lex.exact:
        found.append(lex.exact[word])
    prefix, suffix = _longest_prefix(lex, word), _longest_suffix(lex, word)
    if prefix is not None:
        found.append(lex.prefix[prefix])
    if suffix is not None:
        found.append(lex.suffix[suffix])
    found.extend(value for part, value in lex.infix.items() if part in word)
    return tuple(found)


def build_lexicon(entries: Iterable[tuple[str, V]]) -> Lexicon[V]:
    lex: Lexicon[V] = Lexicon()
    for term, value in entries:
        lex.add(term, value)
    return lex


def parse_tsv(text: str) -> Lexicon[float]:
    """Parse `term<TAB>value` lines; '#' starts a comment line."""
    entries: list[tuple[str, float]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("# ") or line.strip() == "#":
            continue
        term, _, value = line.rstrip().rpartition("\t")
        entries.append((term, float(value)))
    return build_lexicon(entries)


def read_data(name: str) -> str:
    return resources.files(__package__).joinpath("lexicons", name).read_text(encoding="utf-8")


@cache
def load_lexicon(name: str) -> Lexicon[float]:
    """A packaged lexicon (e.g. 'sentiment_de.tsv'); read once per process."""
    return parse_tsv(read_data(name))


@cache
def load_yaml(name: str) -> Any:
    """A packaged YAML data file from lexicons/; read once per process."""
    return yaml.safe_load(read_data(name))
