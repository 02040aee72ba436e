"""Cached gateway health: where the next call goes, without spamming health checks.

    unknown / up   -> the call goes to the gateway (a failing call is itself the check)
    down           -> for `cooldown` seconds after the failure, calls go straight to the fallback
                      (no gateway traffic at all); then exactly ONE caller gets `PROBE` and sends
                      `GET /health/ready`, while every other call keeps using the fallback until
                      that probe has answered. A healthy probe (or any successful gateway call)
                      means up; a failed one restarts the cool-down.

The decisions are taken under a thread lock and never wait on I/O, so one tracker serves threads
(sync client) and tasks (async client) alike. A probe whose caller vanished without reporting
(a cancelled task) stops blocking new probes after `probe_timeout` twice over.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable


class Route(enum.Enum):
    GATEWAY = "gateway"
    PROBE = "probe"
    FALLBACK = "fallback"


class HealthTracker:
    def __init__(self, cooldown: float, probe_timeout: float, clock: Callable[[], float]) -> None:
        self.cooldown = cooldown
        self._stale_probe = 2 * probe_timeout + 1.0
        self._clock = clock
        self._lock = threading.Lock()
        self._down_at: float | None = None  # None: up or unknown
        self._probing_since: float | None = None
        self.reason = ""  # why the gateway is considered down (for error messages)

    def route(self) -> Route:
        with self._lock:
            if self._down_at is None:
                return Route.GATEWAY
            now = self._clock()
            if now - self._down_at < self.cooldown:
                return Route.FALLBACK
            if self._probing_since is not None and now - self._probing_since < self._stale_probe:
                return Route.FALLBACK
            self._probing_since = now
            return Route.PROBE

    @property
    def known_down(self) -> bool:
        """Down, and still inside the cool-down (a fresh probe would not be allowed yet)."""
        with self._lock:
            return self._down_at is not None and self._clock() - self._down_at < self.cooldown

    @property
    def down(self) -> bool:
        with self._lock:
            return self._down_at is not None

    def mark_up(self) -> None:
        with self._lock:
            self._down_at = None
            self._probing_since = None
            self.reason = ""

    def mark_down(self, reason: str) -> None:
        with self._lock:
            self._down_at = self._clock()
            self._probing_since = None
            self.reason = reason

    def probe_finished(self, healthy: bool, reason: str = "") -> None:
        if healthy:
            self.mark_up()
        else:
            self.mark_down(reason)
