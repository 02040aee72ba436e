"""Retry decisions and the backoff schedule: pure functions, the same for both clients.

Retried: connection errors and timeouts (no answer at all), 429, and 5xx except 501. Never
retried: every other 4xx (the request itself is wrong; sending it again cannot help).

Schedule: before attempt n+1 the client waits `min(backoff_max, backoff_base * 2**(n-1))`
scaled by a jitter factor in [0.5, 1) ("equal jitter": spread out, never shorter than half the
step). A `Retry-After` (seconds or an HTTP date) raises the wait to at least that value; when it
asks for more than `max_retry_after`, the client does not wait at all (it gives up, and the
caller sees `RateLimitedError.retry_after`, or the call falls back for a 5xx).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ._config import ClientConfig


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 30.0

    @classmethod
    def from_config(cls, config: ClientConfig) -> RetryPolicy:
        return cls(config.max_attempts, config.backoff_base, config.backoff_max, config.max_retry_after)


def is_retryable(status: int | None) -> bool:
    """None is "no HTTP answer" (connection error, timeout)."""
    return status is None or status == 429 or (status >= 500 and status != 501)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: Callable[[], float]) -> float:
    """The jittered wait after failed attempt number `attempt` (1-based)."""
    step = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
    return float(step * (0.5 + 0.5 * rng()))


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable


def retry_delay(
    policy: RetryPolicy, attempt: int, status: int | None, retry_after: float | None, rng: Callable[[], float]
) -> float | None:
    """Seconds to wait before another attempt, or None: do not retry.

    `attempt` is the number of the attempt that just failed (1-based), `status` its HTTP status
    (None: no answer), `retry_after` the parsed `Retry-After` header.
    """
    if not is_retryable(status) or attempt >= policy.max_attempts:
        return None
    delay = backoff_delay(policy, attempt, rng)
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        delay = max(delay, retry_after)
    return delay
