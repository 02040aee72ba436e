"""Per-caller request and token limits per minute, shared through Redis when it is configured.

Fixed one-minute windows: one INCR per request (and one INCRBY per answer for tokens) is all
Redis sees, so N gateway instances enforce one limit. When Redis is not configured or is
unavailable, the same windows are counted in this process (the limit then holds per instance).
The answer carries what `x-ratelimit-*` and `Retry-After` need, so routes do not know how
the limiter works.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from core.errors import RateLimited

from .shared import UNAVAILABLE, RedisState

WINDOW_S = 60


@dataclass(slots=True)
class Decision:
    limit: int
    remaining: int
    reset_s: float
    token_limit: int | None = None
    tokens_remaining: int | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(0, self.remaining)),
            "x-ratelimit-reset-requests": f"{self.reset_s:.0f}s",
        }
        if self.token_limit is not None:
            headers["x-ratelimit-limit-tokens"] = str(self.token_limit)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, self.tokens_remaining or 0))
            headers["x-ratelimit-reset-tokens"] = f"{self.reset_s:.0f}s"
        return headers


class Limiter:
    def __init__(self, redis: RedisState | None = None, clock: Any = time.time) -> None:
        self.redis = redis
        self._clock = clock
        self._local: dict[str, tuple[int, int]] = {}  # key -> (window, count)

    def _window(self) -> tuple[int, float]:
        now = self._clock()
        return int(now // WINDOW_S), WINDOW_S - (now % WINDOW_S)

    def _local_add(self, key: str, window: int, amount: int) -> int:
        seen_window, count = self._local.get(key, (window, 0))
        count = (count if seen_window == window else 0) + amount
        self._local[key] = (window, count)
        if len(self._local) > 200_000:  # stale windows of idle callers
            self._local = {k: v for k, v in self._local.items() if v[0] == window}
        return count

    async def check(self, caller: str, rpm: int | None, tpm: int | None) -> Decision:
        """Count one request; raise RateLimited when the caller is over either limit."""
        window, reset = self._window()
        rkey, tkey = f"rl:r:{caller}:{window}", f"rl:t:{caller}:{window}"
        counts: Any = UNAVAILABLE
        if self.redis is not None:
            prefix = self.redis.prefix

            async def op(client: Any) -> tuple[int, int]:
                pipe = client.pipeline(transaction=False)
                pipe.incr(prefix + rkey)
                pipe.expire(prefix + rkey, WINDOW_S * 2)
                pipe.get(prefix + tkey)
                requests, _, tokens = await pipe.execute()
                return int(requests), int(tokens or 0)

            counts = await self.redis.run(op)
        if counts is UNAVAILABLE:
            counts = (self._local_add(rkey, window, 1), self._local_add(tkey, window, 0))
        requests, tokens = counts
        limit = rpm or 0
        decision = Decision(limit=limit, remaining=limit - requests, reset_s=reset, token_limit=tpm,
                            tokens_remaining=(tpm - tokens) if tpm else None)
        retry = {"Retry-After": str(max(1, math.ceil(reset)))}
        if rpm and requests > rpm:
            raise RateLimited(f"caller '{caller}' is over its limit of {rpm} requests per minute; "
                              f"retry after {math.ceil(reset)} s", headers={**retry, **decision.headers()})
        if tpm and tokens >= tpm:
            raise RateLimited(f"caller '{caller}' is over its limit of {tpm} tokens per minute; "
                              f"retry after {math.ceil(reset)} s", headers={**retry, **decision.headers()})
        return decision

    async def add_tokens(self, caller: str, tokens: int) -> None:
        """Charge an answer's tokens to the caller's current window."""
        if tokens <= 0:
            return
        window, _ = self._window()
        key = f"rl:t:{caller}:{window}"
        if self.redis is not None:
            prefix = self.redis.prefix

            async def op(client: Any) -> None:
                pipe = client.pipeline(transaction=False)
                pipe.incrby(prefix + key, tokens)
                pipe.expire(prefix + key, WINDOW_S * 2)
                await pipe.execute()

            if await self.redis.run(op) is not UNAVAILABLE:
                return
        self._local_add(key, window, tokens)
