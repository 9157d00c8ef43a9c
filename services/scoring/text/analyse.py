"""The single entry point: analyse(text, language) -> TextAnalysis. Pure and offline."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from schemas.scored import SentimentLabel, TextAnalysis
from services.scoring.text.intents import detect_intents
from services.scoring.text.language import UNDETERMINED, detect_language, normalise_code
from services.scoring.text.sentiment import (
    Profile,
    Valence,
    aggregate,
    clause_valences,
    label,
    polarity,
    profile_for,
)
from services.scoring.text.themes import detect_themes, load_taxonomy
from services.scoring.text.tokens import Token, normalise, split_clauses, tokenise

# Bump when any behaviour (code, lexicons, taxonomy, thresholds) changes: scores computed by
# different versions are not comparable.
TEXT_ANALYSER_VERSION = "text-1.1.0"
_STRONG_NEGATIVE = -0.5  # a comment this negative is a complaint even without a theme


class Lexical(NamedTuple):
    """The part of the analysis that no decision rule (sentiment.Tuning) changes: tuning.py
    computes it once per text and re-applies aggregate/label for every candidate Tuning."""

    lang: str
    profile: Profile
    clauses: list[list[Token]]
    valences: list[Valence]
    n_words: int


def lexical(text: str, language: str | None = None) -> Lexical:
    tokens = tokenise(normalise(text or ""))
    lang = normalise_code(language) or detect_language(tokens)
    profile = profile_for(lang)
    clauses = split_clauses(tokens, profile.breakers)
    n_words = sum(1 for t in tokens if t.kind == "word")
    return Lexical(lang, profile, clauses, clause_valences(clauses, profile), n_words)


def analyse(text: str, language: str | None = None, taxonomy: Path | None = None) -> TextAnalysis:
    """Language, sentiment, themes and intents of one customer comment.

    `language` (ISO 639-1, e.g. 'de' or 'de-DE') skips detection when given. `taxonomy` is an
    optional path to a custom taxonomy YAML (loaded once and cached).
    """
    lang, profile, clauses, valences, n_words = lexical(text, language)
    score = aggregate(valences, n_words, profile)
    polarities = [polarity(v, profile) for v in valences]
    sentiment_label = label(score, n_words, profile)
    themes, negative_themes = detect_themes(clauses, polarities, lang, load_taxonomy(taxonomy))
    intents = detect_intents(clauses, profile)
    negative = sentiment_label is SentimentLabel.negative
    complaint = (
        intents.complaint_cue
        or intents.churn
        or intents.negated_recommend
        or (negative and (bool(negative_themes) or score <= _STRONG_NEGATIVE))
    )
    return TextAnalysis(
        language=lang if lang else UNDETERMINED,
        sentiment=round(score, 4),
        sentiment_label=sentiment_label,
        themes=themes,
        negative_themes=negative_themes,
        churn_intent=intents.churn,
        complaint=complaint,
        recommend_intent=intents.recommend and not complaint,
    )
