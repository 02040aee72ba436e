"""Retries: how many, how far apart, on what; against a scripted stand-in gateway (and the pure schedule)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from llm_gateway_client import AuthenticationError, BadRequestError, LLMGatewayClient, RateLimitedError
from llm_gateway_client._retry import RetryPolicy, backoff_delay, parse_retry_after, retry_delay

COMPLETION = "/v1/completion"
OK: tuple[int, dict[str, str], Any] = (
    200, {}, {"id": "r1", "status": "approved", "confidence": 8.5, "model": "fake-fast", "task_type": "chat",
              "latency_ms": 12.0, "tokens": {"in": 5, "out": 3}, "output": "fine"})


def error(status: int, message: str, error_type: str = "invalid_request_error", **headers: str):
    return (status, headers, {"error": {"message": message, "type": error_type, "param": None, "code": None}})


# -- the schedule, as pure functions -----------------------------------------------------------------


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, backoff_max=4.0)
    assert [backoff_delay(policy, n, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [backoff_delay(policy, n, lambda: 0.999999) for n in (1, 2)] == pytest.approx([0.5, 1.0])


def test_retry_decisions():
    policy = RetryPolicy(max_attempts=3, backoff_base=0.5, max_retry_after=30)
    half = lambda: 0.5  # noqa: E731
    assert retry_delay(policy, 1, None, None, half) == 0.375  # connection error
    assert retry_delay(policy, 2, 503, None, half) == 0.75
    assert retry_delay(policy, 3, 503, None, half) is None  # the third attempt was the last
    assert retry_delay(policy, 1, 429, 7.0, half) == 7.0  # Retry-After honoured
    assert retry_delay(policy, 1, 429, 0.0, half) == 0.375  # ... but never below the backoff
    assert retry_delay(policy, 1, 429, 31.0, half) is None  # above the cap: do not wait at all
    for status in (400, 401, 403, 404, 413, 422, 501):
        assert retry_delay(policy, 1, status, None, half) is None


def test_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412480.0 - 20) == 20.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# -- over HTTP -------------------------------------------------------------------------------------


def test_5xx_is_retried_with_growing_spacing_then_succeeds(stand_in, make_client, sleeps, ollama):
    stand_in.enqueue(COMPLETION, error(502, "upstream failed", "upstream_error"), error(503, "busy", "x"), OK)
    result = make_client(stand_in.url).completion("chat", "hello")
    assert (result.mode, result.output, result.model) == ("gateway", "fine", "fake-fast")
    assert len(stand_in.hits(COMPLETION)) == 3
    assert sleeps == [0.375, 0.75]  # base 0.5 s doubling, jitter fixed at 0.5 -> x0.75
    assert ollama.requests == []


def test_429_retry_after_is_honoured(stand_in, make_client, sleeps):
    stand_in.enqueue(COMPLETION, error(429, "slow down", "rate_limit_error", **{"Retry-After": "2"}), OK)
    assert make_client(stand_in.url).completion("chat", "hello").mode == "gateway"
    assert sleeps == [2.0]
    assert len(stand_in.hits(COMPLETION)) == 2


def test_429_until_the_attempts_run_out_raises_rate_limited(stand_in, make_client, sleeps, ollama):
    stand_in.answers[COMPLETION] = error(429, "over the limit", "rate_limit_error", **{"Retry-After": "1"})
    with pytest.raises(RateLimitedError, match="try again in 1 s") as info:
        make_client(stand_in.url).completion("chat", "hello")
    assert info.value.retry_after == 1.0
    assert sleeps == [1.0, 1.0] and len(stand_in.hits(COMPLETION)) == 3
    assert ollama.requests == []


@pytest.mark.parametrize(("status", "raised"), [(400, BadRequestError), (404, BadRequestError),
                                                 (413, BadRequestError), (422, BadRequestError),
                                                 (401, AuthenticationError), (403, AuthenticationError)])
def test_client_errors_are_never_retried(stand_in, make_client, sleeps, ollama, status, raised):
    stand_in.answers[COMPLETION] = error(status, f"the gateway says no ({status})")
    with pytest.raises(raised) as info:
        make_client(stand_in.url).completion("chat", "hello")
    assert info.value.status_code == status
    assert f"the gateway says no ({status})" in info.value.message
    assert len(stand_in.hits(COMPLETION)) == 1 and sleeps == []
    assert ollama.requests == []  # neither retried nor hidden behind the fallback


def test_timeouts_are_retried_then_the_call_falls_back(stand_in, make_client, sleeps):
    stand_in.delay_s = 0.3
    client = make_client(stand_in.url, read_timeout=0.1)
    result = client.completion("chat", "hello")
    assert result.mode == "fallback"
    assert len(stand_in.hits(COMPLETION)) == 3 and len(sleeps) == 2


def test_retries_really_wait(stand_in, ollama, state_dir):
    """Real time, small delays: the attempts are spaced at least by the backoff's lower bound."""
    client = LLMGatewayClient(stand_in.url, "key", ollama_url=ollama.url, state_dir=state_dir, backoff_base=0.1)
    with client:
        assert client.completion("chat", "hello").mode == "fallback"
    times = [seen.at for seen in stand_in.hits(COMPLETION)]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05 - 0.005  # step 0.1 s, jitter factor >= 0.5
    assert times[2] - times[1] >= 0.10 - 0.005  # step 0.2 s
    assert time.monotonic() - times[0] < 10
