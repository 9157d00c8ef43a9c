"""Per-key token buckets on events: a batch of n events costs n tokens.

Buckets live in each worker process (limits are per worker; with N workers a key may send
up to N times the rate). A request that cannot be paid for is refused whole with 429 and
`Retry-After` (seconds until enough tokens have accrued).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from services.ingest.problems import Problem


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, cost: float, now: float) -> float:
        """Take `cost` tokens; returns 0 on success, else the seconds to wait."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        cost = min(cost, self.burst)  # a batch larger than the bucket waits for a full bucket
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, rate: float, burst: int, enabled: bool = True) -> None:
        self.rate, self.burst, self.enabled = rate, burst, enabled
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, key: str, cost: int, rate: float | None = None, burst: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            b = float(burst or self.burst)
            bucket = self._buckets[key] = TokenBucket(rate or self.rate, b, b, now)
        wait = bucket.take(cost, now)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise Problem("rate-limited", f"Rate limit of {bucket.rate:g} events/s exceeded for this key; "
                          f"retry in {retry} s.", headers={"Retry-After": str(retry)})
