"""Churn, recommend and complaint intents from hand-written cues with negation.

Cues are regexes over a clause's words (see lexicons/intents.yaml). A negator shortly before
a cue's core, or (German) right after it, cancels the cue: "I would never cancel",
"ich werde nicht kündigen", "ich kündige nicht" are not churn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from services.scoring.text.lexicon import load_yaml
from services.scoring.text.sentiment import Profile
from services.scoring.text.tokens import Token

_NEGATION_LOOKBACK = 4  # words before the cue in which a negator counts
_POST_NEGATION = 2  # German: words after the cue in which a negator counts


@dataclass(frozen=True)
class CueSet:
    """The cues of one intent, and all of them as one alternation: a text the alternation does
    not match holds no cue, so most texts are dismissed by one regex search instead of one per cue."""

    patterns: tuple[re.Pattern[str], ...]
    any_cue: re.Pattern[str]


@dataclass(frozen=True)
class Cues:
    churn: CueSet
    recommend: CueSet
    complaint: CueSet


@dataclass(frozen=True)
class Intents:
    churn: bool = False
    recommend: bool = False
    complaint_cue: bool = False
    negated_recommend: bool = False  # "would not recommend": itself a complaint signal


@cache
def cues_for(lang: str) -> Cues | None:
    spec = load_yaml("intents.yaml").get(lang)
    if spec is None:
        return None

    def compile_all(key: str) -> CueSet:
        return cue_set(spec.get(key) or [])

    return Cues(compile_all("churn"), compile_all("recommend"), compile_all("complaint"))


def cue_set(patterns: list[str]) -> CueSet:
    # Group names may not repeat within one regex: the alternation drops the `v` marks.
    alternation = "|".join(f"(?:{p.replace('(?P<v>', '(?:')})" for p in patterns)
    return CueSet(tuple(re.compile(p) for p in patterns), re.compile(alternation or "(?!)"))


_CLAUSE_SEP = " | "  # no cue can match across it: cues are made of words and spaces


def _is_negated(text: str, m: re.Match[str], p: Profile) -> bool:
    """A negator shortly before the cue's core (within its clause), or German right after."""
    core_start, core_end = (m.start("v"), m.end("v")) if "v" in m.re.groupindex else m.span()
    before = text[: m.start()].rsplit(_CLAUSE_SEP, 1)[-1].split()
    inside = text[m.start() : core_start].split()
    if any(w in p.negators for w in before[-_NEGATION_LOOKBACK:] + inside):
        return True
    if p.post_negation:
        after = text[core_end:].split(_CLAUSE_SEP, 1)[0].split()
        return any(w in p.negators for w in after[:_POST_NEGATION])
    return False


def _match(text: str, cues: CueSet, p: Profile) -> tuple[bool, bool]:
    """(a cue matched un-negated, a cue matched but negated)."""
    hit = negated = False
    if cues.any_cue.search(text) is None:
        return hit, negated
    for pattern in cues.patterns:
        for m in pattern.finditer(text):
            if _is_negated(text, m, p):
                negated = True
            else:
                hit = True
    return hit, negated


def detect_intents(clauses: list[list[Token]], p: Profile) -> Intents:
    cues = cues_for(p.lang)
    if cues is None:
        return Intents()
    # One pass per cue over all clauses joined by a separator: cheaper than clause by clause.
    text = _CLAUSE_SEP.join(" ".join(t.text for t in c if t.kind == "word") for c in clauses)
    churn = _match(text, cues.churn, p)[0]
    rec_hit, rec_negated = _match(text, cues.recommend, p)
    complaint = _match(text, cues.complaint, p)[0]
    return Intents(churn, rec_hit and not churn, complaint, rec_negated and not rec_hit)
