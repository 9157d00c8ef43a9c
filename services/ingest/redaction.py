"""Removing personal data from comments before they reach Kafka.

E-mail addresses become `[email]`, IBANs `[iban]`, phone numbers `[phone]`. Phone numbers
are found with `phonenumbers` (Google's libphonenumber), so dates, amounts and order
numbers are left alone; numbers without a country code are read in
`redaction_phone_region`. IBANs are matched by shape (country, check digits, 11-30
alphanumerics, optionally grouped by 4), without the checksum on purpose: a mistyped IBAN
is personal data too. Modes: `internal` (default: only employee feedback, where names and
contact data are most sensitive), `all`, `off`.
"""

from __future__ import annotations

import re

import phonenumbers

from schemas.feedback import FeedbackEvent

EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
_DIGITS = re.compile(r"\d")


class Redactor:
    def __init__(self, mode: str = "internal", phone_region: str = "DE") -> None:
        self.mode = mode
        self.region = phone_region

    def applies(self, event: FeedbackEvent) -> bool:
        return self.mode == "all" or (self.mode == "internal" and event.internal)

    def redact_text(self, text: str) -> str:
        text = EMAIL.sub("[email]", text)
        text = IBAN.sub("[iban]", text)
        if len(_DIGITS.findall(text)) < 6:  # no phone number has fewer digits
            return text
        matches = list(phonenumbers.PhoneNumberMatcher(text, self.region, leniency=phonenumbers.Leniency.VALID))
        for m in reversed(matches):
            text = text[: m.start] + "[phone]" + text[m.end :]
        return text

    def __call__(self, event: FeedbackEvent) -> FeedbackEvent:
        """The event with its comment redacted (the same object if nothing changed)."""
        if event.comment is None or not self.applies(event):
            return event
        text = self.redact_text(event.comment.text)
        if text == event.comment.text:
            return event
        return event.model_copy(update={"comment": event.comment.model_copy(update={"text": text})})
