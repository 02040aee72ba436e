"""Bookkeeping shared by the sandbox and the execution validator: bounded slots and run statistics.

`Slots` is how "at most `pool_size` runs at once" is enforced across threads and event loops,
with a timeout so a caller can abstain instead of holding a request; `SandboxStats` is what the
metrics and the audit read about runs and checks.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any


class SandboxStats:
    """Thread-safe counters and recent timings of sandbox runs (or of checks: the validator keeps
    one too). `snapshot()` is what metrics and the audit read."""

    def __init__(self, keep: int = 2048) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._ms: deque[float] = deque(maxlen=keep)
        self.last_ms: float | None = None

    def record(self, outcome: str, ms: float | None = None) -> None:
        with self._lock:
            self._counts[outcome] = self._counts.get(outcome, 0) + 1
            if ms is not None:
                self._ms.append(ms)
                self.last_ms = ms

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            timings = sorted(self._ms)
        def pct(p: float) -> float | None:
            return round(timings[min(len(timings) - 1, int(p * len(timings)))], 1) if timings else None
        return {"counts": counts, "n": len(timings), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "mean_ms": round(sum(timings) / len(timings), 1) if timings else None}


class Slots:
    """A counting semaphore that threads and any number of event loops can wait on, with a
    timeout. A released slot is handed straight to the oldest waiter."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event | tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def free(self) -> int:
        return self._free

    def try_acquire(self) -> bool:
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            return False

    def acquire_sync(self, timeout: float) -> bool:
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            event = threading.Event()
            self._waiters.append(event)
        if event.wait(max(0.0, timeout)):
            return True
        with self._lock:
            if event in self._waiters:
                self._waiters.remove(event)
                return False
        return True  # handed over just as the wait ended

    async def acquire(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            future: asyncio.Future[None] = loop.create_future()
            waiter = (loop, future)
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(future), max(0.0, timeout))
            return True
        except TimeoutError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    return False
            return True
        except asyncio.CancelledError:
            with self._lock:
                handed = waiter not in self._waiters
                if not handed:
                    self._waiters.remove(waiter)
            if handed:
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if isinstance(waiter, threading.Event):
                    waiter.set()
                    return
                loop, future = waiter
                try:
                    loop.call_soon_threadsafe(_resolve, future)
                    return
                except RuntimeError:  # that loop is closed: try the next waiter
                    continue
            self._free += 1


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
