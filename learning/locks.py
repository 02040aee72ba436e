"""One learning worker acts at a time, however many run: a non-blocking, cross-process lock.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on one dedicated
  connection for the length of the run; the server drops it if the worker dies.
- Redis (when a `redis_url` is configured and the database is not PostgreSQL): `SET key token
  NX PX ttl`, released by a compare-and-delete Lua script, so a worker whose lock expired can
  never delete the next holder's.
- Otherwise (SQLite, one host): an `fcntl.flock` on a file next to the data.

`acquire()` never waits: a worker that cannot get the lock skips that run. A lock object is
held at most once (use a fresh one per run: `lock_factory` picks the kind and makes them);
`held(lock)` is the context manager the runner uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text

LOCK_NAME = "llm-gateway:learning"
# A stable signed 64-bit key for the advisory lock, derived from the name.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Lock(Protocol):
    kind: str

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class PostgresLock:
    kind = "postgres advisory lock"

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine = engine
        self.key = key
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        if self._connection is not None:
            raise RuntimeError("lock already held by this object")
        connection = self.engine.connect()
        try:
            got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar())
            connection.commit()
        except Exception:
            connection.invalidate()
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            connection.commit()
        except Exception:
            connection.invalidate()  # the server frees a dead session's locks
        finally:
            connection.close()


class RedisLock:
    kind = "redis lock"

    def __init__(self, client: Any, name: str = LOCK_NAME, ttl_s: float = 900.0) -> None:
        self.client = client
        self.name = name
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._token: str | None = None

    def acquire(self) -> bool:
        if self._token is not None:
            raise RuntimeError("lock already held by this object")
        token = secrets.token_hex(16)
        if self.client.set(self.name, token, nx=True, px=self.ttl_ms):
            self._token = token
            return True
        return False

    def release(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            self.client.eval(_RELEASE, 1, self.name, token)


class FileLock:
    kind = "file lock"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            raise RuntimeError("lock already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def lock_factory(engine: Engine, redis_url: str | None, lock_dir: str | Path, *,
                 ttl_s: float = 900.0) -> Callable[[], Lock]:
    """A maker of fresh locks (one per run): a Postgres advisory lock on PostgreSQL, else a Redis
    lock when `redis_url` is set, else a file lock in `lock_dir`."""
    if engine.dialect.name == "postgresql":
        return lambda: PostgresLock(engine)
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=3)
        return lambda: RedisLock(client, ttl_s=ttl_s)
    path = Path(lock_dir) / "learning.lock"
    return lambda: FileLock(path)


@contextlib.contextmanager
def held(lock: Lock) -> Iterator[bool]:
    """`with held(lock) as acquired:` — True when this process holds the lock inside the block."""
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()
