"""The client against the real gateway while it is up: results, streaming, and errors that must
neither be retried nor hidden by the fallback."""

from __future__ import annotations

import pytest
from llm_gateway_client import AuthenticationError, BadRequestError, RateLimitedError, UpstreamError

from tests.client.support import ask

FAKE_TIERS = {"fake-fast", "fake-medium", "fake-large", "fake-external"}
TCP_ANSWER = ("A TCP connection starts with a three-way handshake: the client sends SYN, the server "
              "answers SYN-ACK and the client confirms with ACK.")


def test_completion_is_answered_by_the_gateway(gateway, make_client, ollama, sleeps):
    client = make_client(gateway.url, caller="billing-job")
    result = client.completion("code_explanation", ask(TCP_ANSWER), "en")
    assert result.mode == "gateway"
    assert result.model in FAKE_TIERS
    assert result.output == TCP_ANSWER
    assert result.task_type == "code_explanation"
    assert result.status in ("approved", "warning", "pending_review")
    assert result.confidence is not None and 0 <= result.confidence <= 10
    assert result.tokens_in > 0 and result.tokens_out > 0 and result.id
    assert ollama.requests == [] and sleeps == []


def test_chat_and_classify_through_the_gateway(gateway, make_client, ollama):
    client = make_client(gateway.url)
    chat = client.chat([{"role": "user", "content": ask(TCP_ANSWER)}], temperature=0)
    assert (chat.mode, chat.content, chat.finish_reason) == ("gateway", TCP_ANSWER, "stop")
    assert chat.model in FAKE_TIERS and chat.request_id and chat.tier
    assert chat.raw["choices"][0]["message"]["content"] == TCP_ANSWER

    verdict = client.classify(ask("negative"), ["positive", "negative"], task="sentiment")
    assert (verdict.mode, verdict.label) == ("gateway", "negative")
    assert verdict.model in FAKE_TIERS
    assert ollama.requests == []


def test_streaming_chat_through_the_gateway(gateway, make_client, ollama):
    client = make_client(gateway.url)
    with client.chat([{"role": "user", "content": ask(TCP_ANSWER)}], stream=True) as stream:
        assert stream.mode == "gateway" and stream.model in FAKE_TIERS and stream.request_id
        chunks = list(stream)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == TCP_ANSWER
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert ollama.requests == []


def test_health_and_status_when_everything_is_up(gateway, make_client):
    client = make_client(gateway.url)
    assert client.health() is True
    assert client.get_status() == {"gateway": True, "ollama": "up", "mode": "gateway"}


def test_bad_request_is_raised_at_once_not_retried_not_hidden(gateway, make_client, ollama, sleeps):
    client = make_client(gateway.url)
    with pytest.raises(BadRequestError) as info:
        client.completion("no_such_task", "hello")
    assert info.value.status_code == 400
    assert "unknown task_type 'no_such_task'" in info.value.message
    assert info.value.request_id
    assert sleeps == [] and ollama.requests == []
    with pytest.raises(BadRequestError, match="two distinct"):  # checked locally, before any request
        client.classify("hello", ["only-one"])


def test_wrong_key_is_an_authentication_error_not_a_fallback(gateway, make_client, ollama, sleeps):
    client = make_client(gateway.url, api_key="gw-not-a-key")
    with pytest.raises(AuthenticationError, match="LLM_GATEWAY_API_KEY") as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert "gw-not-a-key" not in str(info.value)
    assert sleeps == [] and ollama.requests == []
    assert client.get_status()["mode"] == "gateway"  # a refused key says nothing about the gateway's health


def test_rate_limit_beyond_the_cap_is_raised_without_waiting(make_gateway, make_client, ollama, sleeps):
    server = make_gateway(limits={"max_body_bytes": 65536, "request_timeout_s": 10, "default_rpm": 1})
    client = make_client(server.url, max_retry_after=0.5)
    assert client.completion("chat", ask("one")).mode == "gateway"
    with pytest.raises(RateLimitedError, match="rate-limited") as info:
        client.completion("chat", ask("two"))
    assert info.value.retry_after is not None and 1 <= info.value.retry_after <= 60
    assert sleeps == []  # the gateway asked for more than max_retry_after: no point waiting
    assert ollama.requests == []  # a rate limit is not an outage: no fallback around it


def _sse(*events: str) -> bytes:
    return "".join(f"data: {event}\n\n" for event in events).encode()


CHUNK = '{"id": "c1", "object": "chat.completion.chunk", "model": "fake-fast", "choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": null}]}'  # noqa: E501
SSE = {"content-type": "text/event-stream", "x-gateway-model": "fake-fast", "x-request-id": "req-1"}


def test_an_error_event_mid_stream_raises(stand_in, make_client):
    error = '{"error": {"message": "every tier failed", "type": "upstream_error", "code": "upstream_error"}}'
    stand_in.enqueue("/v1/chat/completions", (200, SSE, _sse(CHUNK, error)))
    stream = make_client(stand_in.url).chat([{"role": "user", "content": "hi"}], stream=True)
    assert (stream.mode, stream.model, stream.request_id) == ("gateway", "fake-fast", "req-1")
    received = []
    with pytest.raises(UpstreamError, match="every tier failed") as info:
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 1 and info.value.request_id == "req-1"


def test_a_stream_without_done_is_incomplete(stand_in, make_client):
    stand_in.enqueue("/v1/chat/completions", (200, SSE, _sse(CHUNK)))
    with pytest.raises(UpstreamError, match=r"ended before \[DONE\]"):
        list(make_client(stand_in.url).chat([{"role": "user", "content": "hi"}], stream=True))
