"""Offline fallback: gateway down -> the local model answers; cached health; both down; back again."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from llm_gateway_client import FallbackUnavailableError, GatewayUnavailableError

from tests.client.support import FakeClock, Switch, ask, free_port

CHAT_API = "/api/chat"


def offline_lines(state_dir):
    path = state_dir / "offline.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_gateway_down_the_local_model_answers(make_client, ollama, state_dir, sleeps):
    client = make_client(f"http://127.0.0.1:{free_port()}", ollama_model="llama3.2:1b")
    result = client.completion("summarization", ask("short summary"), "de", max_tokens=64)
    assert (result.mode, result.model, result.output) == ("fallback", "llama3.2:1b", "short summary")
    assert result.status is None and result.confidence is None and result.tokens_out > 0
    assert len(sleeps) == 2  # three attempts on the gateway first

    [request] = ollama.requests_to(CHAT_API)
    assert request.body["model"] == "llama3.2:1b" and request.body["stream"] is False
    assert request.body["options"] == {"num_predict": 64}
    system = request.body["messages"][0]
    assert system["role"] == "system" and "Summarize" in system["content"] and "German" in system["content"]

    [record] = offline_lines(state_dir)
    assert record["request_id"] == result.id and record["task_type"] == "summarization"
    assert (record["model"], record["output"]) == ("llama3.2:1b", "short summary")
    assert "Summarize" in record["prompt"] and record["created_at"]


def test_classify_chat_and_stream_fall_back_too(make_client, ollama, state_dir):
    client = make_client(f"http://127.0.0.1:{free_port()}")
    verdict = client.classify(ask("The label is: negative."), ["positive", "negative"])
    assert (verdict.mode, verdict.label, verdict.model) == ("fallback", "negative", "qwen2.5:7b")
    assert "Allowed labels: positive, negative." in ollama.requests_to(CHAT_API)[0].body["messages"][0]["content"]

    chat = client.chat([{"role": "user", "content": ask("local hello")}], temperature=0.2)
    assert (chat.mode, chat.content, chat.model) == ("fallback", "local hello", "qwen2.5:7b")
    assert chat.raw["object"] == "chat.completion" and chat.request_id == chat.id

    stream = client.chat([{"role": "user", "content": ask("streamed locally")}], stream=True)
    assert stream.mode == "fallback" and stream.model == "qwen2.5:7b"
    chunks = list(stream)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "streamed locally"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [r["task_type"] for r in offline_lines(state_dir)] == ["classification", "chat", "chat"]


def test_openai_compatible_local_server(make_client, ollama):
    client = make_client(f"http://127.0.0.1:{free_port()}", ollama_api="openai", ollama_model="local-llm")
    result = client.chat([{"role": "user", "content": ask("from llama.cpp")}], max_tokens=10)
    assert (result.mode, result.model, result.content) == ("fallback", "local-llm", "from llama.cpp")
    [request] = ollama.requests_to("/v1/chat/completions")
    assert request.body["max_tokens"] == 10 and request.body["stream"] is False


def test_both_down_says_what_was_tried_and_what_to_do(make_client, state_dir):
    gateway_url, ollama_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    client = make_client(gateway_url, ollama_url=ollama_url)
    with pytest.raises(FallbackUnavailableError) as info:
        client.completion("chat", "hello")
    message = str(info.value)
    assert isinstance(info.value, GatewayUnavailableError)
    for part in (gateway_url, ollama_url, "qwen2.5:7b", "could not connect", "after 3 attempts", "llm-gateway",
                 "ollama serve", "LLM_GATEWAY_URL", "OLLAMA_URL"):
        assert part in message
    assert offline_lines(state_dir) == []
    assert client.get_status() == {"gateway": False, "ollama": "down", "mode": "fallback"}


def test_missing_local_model_is_named(make_client, ollama):
    ollama.set_behaviour("qwen2.5:7b", {"status": 404, "error_message": "model 'qwen2.5:7b' not found"})
    with pytest.raises(FallbackUnavailableError, match=r"ollama pull qwen2\.5:7b"):
        make_client(f"http://127.0.0.1:{free_port()}").completion("chat", "hello")


def test_without_fallback_the_outage_is_raised(make_client, ollama):
    with pytest.raises(GatewayUnavailableError, match="start the gateway") as info:
        make_client(f"http://127.0.0.1:{free_port()}", fallback=False).completion("chat", "hello")
    assert not isinstance(info.value, FallbackUnavailableError)
    assert ollama.requests == []


def test_a_burst_while_down_costs_one_probe_per_cooldown(stand_in, make_client, ollama, sleeps):
    """50 calls while the gateway is sick: 3 attempts for the first call, then nothing until the
    cool-down has passed; then 50 concurrent calls make exactly one health probe between them."""
    clock = FakeClock()
    client = make_client(stand_in.url, clock=clock, health_cooldown=30)
    results = [client.completion("chat", "hello") for _ in range(50)]
    assert {r.mode for r in results} == {"fallback"}
    assert [s.path for s in stand_in.seen] == ["/v1/completion"] * 3
    assert len(sleeps) == 2 and len(ollama.requests_to(CHAT_API)) == 50
    assert client.health() is False and len(stand_in.seen) == 3  # cached: no request inside the cool-down

    clock.advance(31)
    stand_in.delay_s = 0.2  # the probe is slow: every concurrent call must not start its own
    with ThreadPoolExecutor(16) as pool:
        burst = list(pool.map(lambda _: client.completion("chat", "hello"), range(50)))
    assert {r.mode for r in burst} == {"fallback"}
    assert [s.path for s in stand_in.seen[3:]] == ["/health/ready"]
    assert len(ollama.requests_to(CHAT_API)) == 100


def test_upload_failure_keeps_the_records_and_is_not_retried_on_every_call(stand_in, make_client, state_dir):
    clock = FakeClock()
    client = make_client(stand_in.url, clock=clock, health_cooldown=30)
    assert client.completion("chat", "hello").mode == "fallback"
    stand_in.answers["/health/ready"] = (200, {}, {"ready": True})
    stand_in.answers["/v1/completion"] = (200, {}, {"id": "g1", "model": "fake-fast", "output": "ok",
                                                    "tokens": {"in": 1, "out": 1}})
    stand_in.answers["/v1/audit/offline"] = (503, {}, {"error": {"message": "database down"}})
    clock.advance(31)
    assert [client.completion("chat", "hello").mode for _ in range(3)] == ["gateway"] * 3
    assert len(stand_in.hits("/health/ready")) == 1
    assert len(stand_in.hits("/v1/audit/offline")) == 1  # one try, then wait before the next
    assert len(list(state_dir.glob("offline-*.upload.jsonl"))) == 1  # kept, rotated, for the next try

    clock.advance(31)
    stand_in.answers["/v1/audit/offline"] = (200, {}, {"accepted": 1})
    client.completion("chat", "hello")
    assert len(stand_in.hits("/v1/audit/offline")) == 2
    assert list(state_dir.glob("offline*.jsonl")) == []


def test_back_to_the_gateway_after_a_real_cooldown(gateway, make_client, ollama):
    switch = Switch(gateway.port).on()
    client = make_client(switch.url, health_cooldown=0.2)
    try:
        switch.off()
        assert client.chat([{"role": "user", "content": ask("local")}]).mode == "fallback"
        switch.on()
        time.sleep(0.25)
        back = client.chat([{"role": "user", "content": ask("remote")}])
        assert (back.mode, back.content) == ("gateway", "remote") and back.model.startswith("fake-")
        assert client.health() is True
    finally:
        switch.off()
