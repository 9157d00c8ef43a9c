"""API keys: stored only as SHA-256 digests, each scoped to touchpoints and sources.

A client sends its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys come
from `api_keys` (env `KSP_API_KEYS`, JSON) and/or `api_keys_file` (YAML or JSON with a
top-level `keys:` list); both have the shape of `settings.ApiKey`. Keys are random tokens of
high entropy, so an unsalted SHA-256 is enough (as for GitHub tokens); print a key's digest
with `python -m services.ingest.auth <key>`. Keys are never logged; only their names.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from schemas.feedback import FeedbackEvent, Touchpoint
from services.ingest.problems import Problem
from services.ingest.settings import ApiKey, IngestSettings

_KEYS = TypeAdapter(list[ApiKey])


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    touchpoints: frozenset[Touchpoint] | None
    sources: frozenset[str] | None
    rate: float | None = None
    burst: int | None = None

    def allows(self, event: FeedbackEvent) -> bool:
        return (self.touchpoints is None or event.touchpoint in self.touchpoints) and (
            self.sources is None or event.source in self.sources
        )


ANONYMOUS = Principal("anonymous", None, None)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys_file(path: Path) -> list[ApiKey]:
    doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    if isinstance(doc, dict):
        doc = doc.get("keys", [])
    return _KEYS.validate_python(doc or [])


class KeyStore:
    def __init__(self, keys: Iterable[ApiKey], enabled: bool = True) -> None:
        self.enabled = enabled
        self._by_digest = {
            k.sha256: Principal(
                k.name,
                frozenset(k.touchpoints) if k.touchpoints is not None else None,
                frozenset(k.sources) if k.sources is not None else None,
                k.rate_limit_events_per_s,
                k.rate_limit_burst,
            )
            for k in keys
        }

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> KeyStore:
        keys = list(settings.api_keys)
        if settings.api_keys_file is not None:
            keys += load_keys_file(settings.api_keys_file)
        return cls(keys, enabled=settings.auth_enabled)

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        key = headers.get("x-api-key")
        if key is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        if not key:
            raise Problem("unauthorized", "Send an API key as `Authorization: Bearer <key>` or `X-API-Key`.",
                          headers={"WWW-Authenticate": 'Bearer realm="kundensprechen"'})
        # Look-up by digest: the digest of a guess reveals nothing about stored keys.
        principal = self._by_digest.get(hash_key(key))
        if principal is None:
            raise Problem("unauthorized", "The API key is not valid.",
                          headers={"WWW-Authenticate": 'Bearer realm="kundensprechen", error="invalid_token"'})
        return principal


def check_scope(principal: Principal, events: Iterable[tuple[int, FeedbackEvent]]) -> None:
    """Raise 403 listing every item the key may not send (nothing of the request is accepted)."""
    errors = [
        {"index": i, "loc": ["touchpoint" if principal.touchpoints is not None
                             and e.touchpoint not in principal.touchpoints else "source"],
         "msg": f"key {principal.name!r} may not send touchpoint={e.touchpoint.value} source={e.source}"}
        for i, e in events if not principal.allows(e)
    ]
    if errors:
        raise Problem("forbidden", f"{len(errors)} item(s) are outside the key's scope.", errors=errors)


def main() -> None:
    """`python -m services.ingest.auth [KEY]`: print the digest of KEY, or make a new key."""
    key = sys.argv[1] if len(sys.argv) > 1 else secrets.token_urlsafe(32)
    if len(sys.argv) <= 1:
        print(f"key:    {key}")
    print(f"sha256: {hash_key(key)}")


if __name__ == "__main__":
    main()
