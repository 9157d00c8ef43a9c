"""Theme detection from a versioned YAML taxonomy, matched on tokens (so 'rate' never
matches inside 'separately'), with per-clause polarity for negative_themes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from services.scoring.text.lexicon import Lexicon
from services.scoring.text.tokens import Token

ThemeIds = frozenset[str]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    theme_ids: tuple[str, ...]
    matchers: dict[str, Lexicon[ThemeIds]]  # per language: term -> theme ids


def parse_taxonomy(text: str) -> Taxonomy:
    """Build matchers from YAML text; a term listed under several themes maps to all."""
    doc = yaml.safe_load(text)
    merged: dict[str, dict[str, set[str]]] = {}
    for theme_id, spec in doc["themes"].items():
        for lang, terms in (spec.get("terms") or {}).items():
            for term in terms:
                merged.setdefault(lang, {}).setdefault(str(term).lower(), set()).add(theme_id)
    matchers: dict[str, Lexicon[ThemeIds]] = {}
    for lang, entries in merged.items():
        lex: Lexicon[ThemeIds] = Lexicon()
        for term, ids in entries.items():
            lex.add(term, frozenset(ids))
        matchers[lang] = lex
    return Taxonomy(str(doc.get("version", "0")), tuple(doc["themes"]), matchers)


@lru_cache(maxsize=8)
def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The packaged taxonomy, or a custom one from `path`; each file is read once."""
    if path is None:
        text = resources.files(__package__).joinpath("taxonomy.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return parse_taxonomy(text)


def clause_themes(clause: list[Token], lex: Lexicon[ThemeIds]) -> set[str]:
    """Theme ids mentioned in one clause; phrases first, then single words."""
    words = [t.text for t in clause if t.kind == "word"]
    found: set[str] = set()
    heads = lex.phrase_heads  # checked here: most words start no phrase
    i = 0
    while i < len(words):
        phrase = lex.phrase_at(words, i) if words[i] in heads else None
        if phrase:
            found |= phrase[1]
            i += phrase[0]
            continue
        for ids in lex.lookup_all(words[i]):
            found |= ids
        i += 1
    return found


def detect_themes(
    clauses: list[list[Token]], polarities: list[float], lang: str, taxonomy: Taxonomy
) -> tuple[list[str], list[str]]:
    """(themes, negative_themes) in taxonomy order. A theme is negative when any clause
    mentioning it has negative valence (negation already applied within the clause)."""
    lex = taxonomy.matchers.get(lang)
    if lex is None:
        return [], []
    themes: set[str] = set()
    negative: set[str] = set()
    for clause, polarity in zip(clauses, polarities, strict=True):
        found = clause_themes(clause, lex)
        themes |= found
        if polarity < 0:
            negative |= found
    order = taxonomy.theme_ids
    return [t for t in order if t in themes], [t for t in order if t in negative]
