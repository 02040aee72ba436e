"""Per-caller request limits (in-process; the shared Redis limiter plugs in behind the same call).

A token bucket per caller: capacity = rpm, refilled continuously, so a burst up to the limit is
allowed and the steady rate is rpm/60 per second. The answer carries what `x-ratelimit-*` and
`Retry-After` need, so the route does not know how the limiter works.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .errors import RateLimited


@dataclass(slots=True)
class Decision:
    limit: int
    remaining: int
    reset_s: float

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset_s:.1f}s",
        }


class LocalLimiter:
    """Token buckets in this process. Bounded: idle callers' buckets are dropped."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, last refill)
        self._now = time.monotonic

    def check(self, caller: str, rpm: int) -> Decision:
        now = self._now()
        rate = rpm / 60.0
        tokens, last = self._buckets.get(caller, (float(rpm), now))
        tokens = min(float(rpm), tokens + (now - last) * rate)
        if tokens < 1.0:
            wait = (1.0 - tokens) / rate
            self._buckets[caller] = (tokens, now)
            decision = Decision(limit=rpm, remaining=0, reset_s=wait)
            raise RateLimited(
                f"caller '{caller}' is over its limit of {rpm} requests per minute; retry after {math.ceil(wait)} s",
                headers={"Retry-After": str(max(1, math.ceil(wait))), **decision.headers()},
            )
        tokens -= 1.0
        self._buckets[caller] = (tokens, now)
        if len(self._buckets) > 100_000:
            self._buckets.pop(next(iter(self._buckets)))
        return Decision(limit=rpm, remaining=int(tokens), reset_s=(rpm - tokens) / rate)
