"""Tier routing and the external fallback chain: five fake providers and a fake Ollama, real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.support.servers import AGENT_KEY, base_config, deployment
from tests.support.services import TcpProxy

AUTH = {"Authorization": f"Bearer {AGENT_KEY}"}
REDIS_DB = 15  # the tests' own database: flushed before each test that uses it
CHAIN = ["fake-cerebras", "fake-groq", "fake-mistral", "meta/fake-nim", "@cf/meta/fake-cf"]


def chain_config(fake_url: str, **gateway: Any) -> dict[str, Any]:
    config = base_config(fake_url, **gateway)
    v1 = fake_url + "/v1"
    config["model_list"] = [
        deployment("fast", "qwen-fast", fake_url, provider="ollama_chat"),
        deployment("medium", "fake-medium", v1),
        deployment("large", "fake-large", v1),
        deployment("external", "fake-cerebras", v1, provider="cerebras", order=1, timeout=2),
        deployment("external", "fake-groq", fake_url + "/openai/v1", provider="groq", order=2, timeout=2),
        deployment("external", "fake-mistral", v1, provider="mistral", order=3, timeout=2),
        deployment("external", "meta/fake-nim", v1, provider="nvidia_nim", order=4, timeout=2, id="fake-nim"),
        deployment("external", "@cf/meta/fake-cf", fake_url + "/client/v4/accounts/acc/ai/run/",
                   provider="cloudflare", order=5, timeout=2, id="fake-cf"),
        deployment("embeddings", "fake-embed", v1),
    ]
    return config


def ask(server: Any, content: str = "hello", model: str = "external", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30)


def served_by(fake: Any) -> list[str]:
    return [r.model for r in fake.requests_to("/chat/completions")]


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()


@pytest.mark.parametrize("failure", [
    {"status": 429, "retry_after": 30},
    {"status": 429},
    {"status": 500},
    {"status": 503},
    {"malformed_json": True},
    {"latency_ms": 4000},
    {"drop_connection": True},
])
def test_first_provider_failing_fails_over_to_the_next(make_gateway, fake, failure):
    server = make_gateway(chain_config(fake.url))
    fake.set_behaviour("fake-cerebras", failure)
    response = ask(server)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-model"] == "fake-groq"
    assert served_by(fake)[:2] == ["fake-cerebras", "fake-groq"]


def test_rate_limited_provider_cools_down_for_its_retry_after_and_is_skipped(make_gateway, fake):
    server = make_gateway(chain_config(fake.url))
    fake.set_behaviour("fake-cerebras", {"status": 429, "retry_after": 30})
    started = time.monotonic()
    first = ask(server)
    assert first.headers["x-gateway-model"] == "fake-groq"
    assert time.monotonic() - started < 3, "must move on at once, never sleep through Retry-After"
    from tests.integration.test_quality_pipeline import audit_row

    attempts = audit_row(server, first.headers["x-request-id"]).attempts
    assert [(a["deployment"], a["outcome"], a["retry_after"]) for a in attempts] == [
        ("fake-cerebras", "RateLimitError", 30.0), ("fake-groq", "ok", None)]
    fake.clear_requests()
    fake.clear_behaviour("fake-cerebras")
    assert ask(server).headers["x-gateway-model"] == "fake-groq"
    assert "fake-cerebras" not in served_by(fake)  # still cooling down


def test_the_whole_chain_in_order(make_gateway, fake):
    server = make_gateway(chain_config(fake.url))
    for i, model in enumerate(CHAIN[:-1]):
        fake.set_behaviour(model, [{"status": 429}, {"status": 500}, {"status": 503}, {"malformed_json": True}][i])
    response = ask(server)
    assert response.status_code == 200
    assert response.headers["x-gateway-model"] == "fake-cf"
    assert served_by(fake) == CHAIN
    for sent in fake.requests_to("/chat/completions"):  # gateway-side knobs never reach a provider
        assert not {"max_retries", "allowed_openai_params", "metadata", "api_key"} & set(sent.body)


def test_no_provider_client_sleeps_through_a_retry_after(make_gateway, fake):
    """cerebras and nvidia_nim run an OpenAI SDK client that would retry a 429 itself."""
    server = make_gateway(chain_config(fake.url))
    for model in CHAIN[:4]:
        fake.set_behaviour(model, {"status": 429, "retry_after": 20})
    started = time.monotonic()
    assert ask(server).headers["x-gateway-model"] == "fake-cf"
    assert time.monotonic() - started < 5
    assert served_by(fake) == CHAIN  # each provider asked exactly once


def test_connection_refused_provider_is_skipped(make_gateway, fake):
    config = chain_config(fake.url)
    config["model_list"][3] = deployment("external", "fake-cerebras", "http://127.0.0.1:9/v1", provider="cerebras",
                                         order=1, timeout=2)
    server = make_gateway(config)
    assert ask(server).headers["x-gateway-model"] == "fake-groq"


def test_every_provider_cooling_down_is_503_with_retry_after(make_gateway, fake):
    server = make_gateway(chain_config(fake.url))
    for model in CHAIN:
        fake.set_behaviour(model, {"status": 429, "retry_after": 20})
    first = ask(server)
    assert first.status_code == 429
    time.sleep(1.2)
    second = ask(server)
    assert second.status_code in (429, 503)
    # from the earliest cooldown end (20 s after the first call), not the configured default (30 s)
    assert 1 <= int(second.headers["retry-after"]) <= 19
    assert len(served_by(fake)) == len(CHAIN)  # the second call tried nobody


def test_failing_local_tier_falls_over_to_the_next_tier(make_gateway, fake):
    server = make_gateway(chain_config(fake.url))
    fake.set_behaviour("qwen-fast", {"status": 500})
    response = ask(server, model="auto")
    assert response.status_code == 200 and response.headers["x-gateway-tier"] == "medium"
    ollama = fake.requests_to("/api/chat")[0].body
    assert ollama["model"] == "qwen-fast"
    assert "max_retries" not in ollama and "max_retries" not in ollama.get("options", {})


def test_stream_fails_over_before_the_first_byte(make_gateway, fake):
    server = make_gateway(chain_config(fake.url))
    fake.set_behaviour("fake-cerebras", {"status": 503})
    body = {"model": "external", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200 and response.headers["x-gateway-model"] == "fake-groq"
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"


def test_stall_after_the_first_byte_is_an_error_event_and_an_incomplete_attempt(make_gateway, fake):
    server = make_gateway(chain_config(fake.url, limits={"max_body_bytes": 65536, "request_timeout_s": 5}))
    fake.set_behaviour("fake-cerebras", {"text": "one two three four", "stall_after_chunks": 2, "stall_s": 30})
    body = {"model": "external", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        request_id = response.headers["x-request-id"]
    assert "error" in json.loads(events[-1])
    from tests.integration.test_quality_pipeline import audit_row

    row = audit_row(server, request_id)
    assert row.status == "error"
    assert row.attempts[-1]["outcome"] == "incomplete"


# --- shared state in Redis ---------------------------------------------------------------------------

def test_cooldown_set_by_one_instance_is_respected_by_another(make_gateway, fake, redis_url):
    one = make_gateway(chain_config(fake.url, redis_url=redis_url))
    two = make_gateway(chain_config(fake.url, redis_url=redis_url))
    fake.set_behaviour("fake-cerebras", {"status": 429, "retry_after": 30})
    assert ask(one).headers["x-gateway-model"] == "fake-groq"
    fake.clear_requests()
    fake.clear_behaviour("fake-cerebras")
    time.sleep(0.3)  # the cooldown write is asynchronous
    assert ask(two).headers["x-gateway-model"] == "fake-groq"
    assert "fake-cerebras" not in served_by(fake)


def test_caller_limits_hold_across_instances(make_gateway, fake, redis_url):
    limits = {"max_body_bytes": 65536, "request_timeout_s": 10, "default_rpm": 3}
    one = make_gateway(chain_config(fake.url, redis_url=redis_url, limits=limits))
    two = make_gateway(chain_config(fake.url, redis_url=redis_url, limits=limits))
    assert ask(one, model="medium").status_code == 200
    assert ask(two, model="medium").status_code == 200
    assert ask(one, model="medium").headers["x-ratelimit-remaining-requests"] == "0"
    refused = ask(two, model="medium")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_session_pin_is_shared_across_instances(make_gateway, fake, redis_url):
    one = make_gateway(chain_config(fake.url, redis_url=redis_url))
    two = make_gateway(chain_config(fake.url, redis_url=redis_url))
    fake.enqueue("qwen-fast", {"text": "I'm sorry, but I can't help with that request."})
    headers = {**AUTH, "x-session-id": "shared-session"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "Explain the handshake."}]}
    first = httpx.post(one.url + "/v1/chat/completions", json=body, headers=headers, timeout=15)
    assert first.headers["x-gateway-tier"] == "medium"
    second = httpx.post(two.url + "/v1/chat/completions", json=body, headers=headers, timeout=15)
    assert second.headers["x-gateway-tier"] == "medium" and "pinned" in second.headers["x-gateway-route-reason"]


def test_redis_going_away_mid_test_keeps_requests_succeeding(make_gateway, fake, redis_url):
    with TcpProxy("127.0.0.1", 6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}"
        limits = {"max_body_bytes": 65536, "request_timeout_s": 10, "default_rpm": 1000}
        server = make_gateway(chain_config(fake.url, redis_url=url, limits=limits))
        assert ask(server, model="medium").status_code == 200
        assert httpx.get(server.url + "/health").json()["dependencies"]["redis"]["state"] == "ok"
        proxy.cut()
        for _ in range(5):
            response = ask(server, model="medium", content="still here?")
            assert response.status_code == 200
        server.app.state.health_cache = None
        health = httpx.get(server.url + "/health").json()
        assert health["dependencies"]["redis"]["state"] == "degraded" and health["status"] == "degraded"
        proxy.restore()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ask(server, model="medium")
            server.app.state.health_cache = None
            if httpx.get(server.url + "/health").json()["dependencies"]["redis"]["state"] == "ok":
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the gateway did not go back to Redis")


def test_free_tier_budget_rotates_to_the_next_provider_before_it_refuses(make_gateway, fake):
    config = chain_config(fake.url)
    config["router_settings"]["routing_strategy"] = "usage-based-routing-v2"
    config["model_list"][3]["litellm_params"]["rpm"] = 2  # cerebras: a tiny free tier
    server = make_gateway(config)
    models = [ask(server).headers["x-gateway-model"] for _ in range(4)]
    assert models[0] == "fake-cerebras"
    assert models.count("fake-cerebras") <= 2 and "fake-groq" in models
    assert all(r.status_code == 200 for r in [ask(server)])


def test_client_disconnect_ends_the_call_and_is_audited(make_gateway, fake):
    server = make_gateway(chain_config(fake.url))
    fake.set_behaviour("fake-cerebras", {"text": " ".join(["word"] * 200), "tokens_per_s": 20})
    body = {"model": "fake-cerebras", "stream": True, "messages": [{"role": "user", "content": "talk"}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                break  # the client goes away after the first chunk
    from tests.integration.test_quality_pipeline import audit_row

    row = audit_row(server, request_id, timeout=15)
    assert row.status == "error" and row.error_class == "ClientDisconnected"
