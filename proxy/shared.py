"""Shared state in Redis, with a circuit breaker that falls back to in-process state.

Every Redis operation has a short timeout (tens of ms). One failure opens the breaker for
`retry_after_s`: during that time callers use their in-process fallback without touching Redis,
so a slow or dead Redis costs one timeout, not one per request. After that the next operation
tries Redis again (half-open) and closes the breaker when it works: the gateway goes back to
shared state by itself. `/health` shows the state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from plugins.tiering import PinStore

log = logging.getLogger("gateway.redis")

T = TypeVar("T")


class Unavailable:
    """Returned instead of a value when Redis cannot be used right now."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable()


class RedisState:
    def __init__(self, url: str, timeout_s: float = 0.05, retry_after_s: float = 2.0, prefix: str = "gw:") -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                              retry_on_timeout=False, health_check_interval=0)
        self._open_until = 0.0
        self.last_error: str | None = None
        self.failures = 0

    @property
    def state(self) -> str:
        return "degraded" if time.monotonic() < self._open_until else "ok"

    async def run(self, operation: Callable[[Any], Awaitable[T]]) -> T | Unavailable:
        if time.monotonic() < self._open_until:
            return UNAVAILABLE
        try:
            result = await asyncio.wait_for(operation(self.client), self.timeout_s * 4)
        except Exception as exc:  # redis errors, OSError, timeouts: all mean "use local state"
            self.failures += 1
            self._open_until = time.monotonic() + self.retry_after_s
            if self.last_error is None:
                log.warning("redis unavailable (%s); serving on in-process state until it is back",
                            type(exc).__name__)
            self.last_error = type(exc).__name__
            return UNAVAILABLE
        if self.last_error is not None:
            log.warning("redis is back; shared state restored")
            self.last_error = None
        return result

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception:
            log.debug("redis close failed", exc_info=True)


def router_redis_settings(url: str) -> dict[str, Any]:
    """litellm.Router's redis arguments for `url`, with short timeouts (cooldowns, usage counters)."""
    parsed = urlparse(url)
    settings: dict[str, Any] = {
        "redis_host": parsed.hostname or "127.0.0.1",
        "redis_port": parsed.port or 6379,
        "cache_kwargs": {"socket_timeout": 0.05, "socket_connect_timeout": 0.05},
    }
    if parsed.password:
        settings["redis_password"] = parsed.password
    if parsed.path and parsed.path.strip("/").isdigit():
        settings["cache_kwargs"]["db"] = int(parsed.path.strip("/"))
    return settings


class RedisPins:
    """Session pins in Redis (so every instance pins a conversation alike), local when it is down."""

    def __init__(self, redis: RedisState, local: PinStore) -> None:
        self.redis = redis
        self.local = local

    async def get(self, key: str) -> str | None:
        full = self.redis.prefix + "pin:" + key

        async def op(client: Any) -> Any:
            return await client.get(full)

        value = await self.redis.run(op)
        if isinstance(value, Unavailable):
            return await self.local.get(key)
        return str(value.decode()) if isinstance(value, bytes) else None

    async def set(self, key: str, tier: str, ttl_s: float) -> None:
        await self.local.set(key, tier, ttl_s)
        full = self.redis.prefix + "pin:" + key

        async def op(client: Any) -> Any:
            return await client.set(full, tier, ex=max(1, int(ttl_s)))

        await self.redis.run(op)
