"""Properties that hold for any input: bounded scores, no exceptions, negation removes churn."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.scored import SentimentLabel
from services.scoring.text import analyse
from services.scoring.text.themes import load_taxonomy

LANGS = st.sampled_from([None, "de", "en", "fr", "und", "de-AT", "xx"])


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=5000), language=LANGS)
def test_analyse_never_raises_and_stays_in_range(text: str, language: str | None) -> None:
    result = analyse(text, language)
    assert -1.0 <= result.sentiment <= 1.0
    assert result.sentiment_label in set(SentimentLabel)
    assert set(result.negative_themes) <= set(result.themes) <= set(load_taxonomy().theme_ids)
    assert not (result.recommend_intent and result.churn_intent)


_SOUP = "the service delay staff great terrible not never nicht kein sehr aber but Verspätung "
_SOUP += "freundlich unfreundlich kündigen cancel again wieder ! ? , . 😡 :) Zug flight"
WORDS = st.sampled_from(_SOUP.split(" "))


@settings(max_examples=300, deadline=None)
@given(words=st.lists(WORDS, max_size=60), language=LANGS)
def test_vocabulary_soup_stays_in_range(words: list[str], language: str | None) -> None:
    result = analyse(" ".join(words), language)
    assert -1.0 <= result.sentiment <= 1.0


def test_label_agrees_with_the_sign_of_the_score() -> None:
    for text in ["great", "terrible", "hello", "super", "schrecklich"]:
        result = analyse(text)
        if result.sentiment_label is SentimentLabel.positive:
            assert result.sentiment > 0
        if result.sentiment_label is SentimentLabel.negative:
            assert result.sentiment < 0


EN_CHURN = st.sampled_from(
    ["cancel my contract", "cancel my subscription", "cancel my account", "unsubscribe"]
)
EN_SUBJECT = st.sampled_from(["I will", "I'm going to", "We will", "I'll"])
EN_NEGATION = st.sampled_from(["never", "not", "definitely not"])


@given(subject=EN_SUBJECT, action=EN_CHURN, negation=EN_NEGATION)
def test_negation_flips_churn_in_english(subject: str, action: str, negation: str) -> None:
    assert analyse(f"{subject} {action}", "en").churn_intent
    assert not analyse(f"{subject} {negation} {action}", "en").churn_intent


DE_SUBJECT = st.sampled_from(["Ich werde", "Wir werden", "Ich will", "Ich möchte"])
DE_OBJECT = st.sampled_from(["", "meinen Vertrag", "das Abo", "meine Bahncard"])
DE_NEGATION = st.sampled_from(["nicht", "auf keinen Fall", "niemals"])


@given(subject=DE_SUBJECT, obj=DE_OBJECT, negation=DE_NEGATION)
def test_negation_flips_churn_in_german(subject: str, obj: str, negation: str) -> None:
    assert analyse(f"{subject} {obj} kündigen", "de").churn_intent
    assert not analyse(f"{subject} {obj} {negation} kündigen", "de").churn_intent


def test_analyse_is_pure() -> None:
    text = "Zug 30 Minuten zu spät, Personal unfreundlich. Ich kündige!"
    assert analyse(text) == analyse(text)
