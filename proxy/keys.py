"""API keys stored in the database (`llm-gateway keys create`), beside the config's keys.

A lookup must not put a database round trip on every request: results are cached per key digest
for `ttl_s` (a revoked key keeps working at most that long; unknown digests are cached for a
shorter time so a brute-force loop cannot hammer the database). When the database is down, the
lookup answers "unknown" and config keys keep working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from sqlalchemy.orm import Session, sessionmaker

from store.queries import lookup_api_key

from .auth import Caller

log = logging.getLogger("gateway.keys")


class DatabaseKeys:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float = 30.0, negative_ttl_s: float = 5.0,
                 capacity: int = 10_000) -> None:
        self._sessions = sessions
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._capacity = capacity
        self._cache: OrderedDict[str, tuple[Caller | None, float]] = OrderedDict()

    def _query(self, digest: str) -> Caller | None:
        with self._sessions() as session:
            row = lookup_api_key(session, digest)
            return Caller(name=row.name, role=row.role) if row is not None else None

    async def lookup(self, digest: str) -> Caller | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            caller = await asyncio.to_thread(self._query, digest)
        except Exception as exc:
            log.warning("key lookup in the database failed (%s); only config keys are accepted", type(exc).__name__)
            return None
        self._cache[digest] = (caller, now + (self._ttl if caller else self._negative_ttl))
        self._cache.move_to_end(digest)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return caller

    def forget(self) -> None:
        self._cache.clear()
