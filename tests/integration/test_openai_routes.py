"""The gateway core through the official `openai` SDK, backed by the fake upstream."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import openai
import pytest

from tests.support.servers import ADMIN_KEY, AGENT_KEY, PROVIDER_KEY


def directive(**behaviour: object) -> str:
    return "[[fake:" + json.dumps(behaviour) + "]]"


def test_chat_answers_with_the_fake_model_and_gateway_headers(client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="fast", messages=[{"role": "user", "content": "Say hello " + directive(text="Hello from the fast tier.")}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fast tier."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    assert raw.headers["x-gateway-tier"] == "fast"
    assert raw.headers["x-gateway-model"] == "fake-fast"
    assert raw.headers["x-request-id"].startswith("req_")
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    assert fake.requests_to("/chat/completions")[-1].model == "fake-fast"


def test_agent_model_names_are_aliased_to_auto(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-session-id": "alias-test"},  # the shared gateway may have pinned other sessions
    )
    assert raw.headers["x-gateway-tier"] == "fast"
    assert "alias" in raw.headers["x-gateway-route-reason"]


def test_concrete_model_name_goes_to_that_deployment(client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="fake-large", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-gateway-model"] == "fake-large"
    assert fake.requests_to("/chat/completions")[-1].model == "fake-large"


def test_sampling_and_tool_fields_are_passed_through(client, fake):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    client.chat.completions.create(
        model="medium",
        messages=[{"role": "user", "content": "weather?"}],
        temperature=0.3,
        top_p=0.9,
        max_tokens=77,
        stop=["END"],
        seed=42,
        user="u-1",
        tools=tools,
        tool_choice="auto",
        response_format={"type": "text"},
    )
    sent = fake.requests_to("/chat/completions")[-1].body
    # `user` is accepted, but litellm forwards it only to providers that support it (not to a
    # generic OpenAI-compatible base), so it is not asserted here.
    for key, value in {"temperature": 0.3, "top_p": 0.9, "max_tokens": 77, "seed": 42, "tool_choice": "auto"}.items():
        assert sent[key] == value, key
    assert sent["stop"] == ["END"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_stream_with_and_without_usage(client):
    prompt = "tell me " + directive(text="one two three four five")
    chunks = list(
        client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == ["one", "two", "three", "four", "five"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)

    plain = list(
        client.chat.completions.create(model="fast", messages=[{"role": "user", "content": prompt}], stream=True)
    )
    assert all(c.usage is None for c in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain if c.choices).split()[0] == "one"


def test_tool_call_round_trip_preserves_ids(client, fake):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    ask = directive(tool_calls=[{"id": "call_weather_1", "name": "get_weather", "arguments": {"city": "Paris"}}])
    messages: list[dict] = [{"role": "user", "content": "Weather in Paris? " + ask}]
    first = client.chat.completions.create(model="fast", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.id == "call_weather_1"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    messages.append({"role": "assistant", "content": "", "tool_calls": [call.model_dump()]})
    messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'})
    messages.append({"role": "user", "content": directive(text="It is 18 degrees in Paris.")})
    final = client.chat.completions.create(model="fast", messages=messages, tools=tools)
    assert final.choices[0].message.content == "It is 18 degrees in Paris."
    sent = fake.requests_to("/chat/completions")[-1].body["messages"]
    assert any(m.get("tool_call_id") == "call_weather_1" for m in sent)
    assert any((m.get("tool_calls") or [{}])[0].get("id") == "call_weather_1" for m in sent)


def test_tool_call_stream(client):
    ask = directive(tool_calls=[{"id": "call_s1", "name": "lookup", "arguments": {"q": "gateway"}}])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    chunks = list(
        client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": ask}], tools=tools, stream=True
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_s1"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments) == {"q": "gateway"}


def test_completions(client):
    answer = client.completions.create(
        model="fast", prompt="Once upon a time " + directive(text="there was a gateway.")
    )
    assert answer.choices[0].text == "there was a gateway."


def test_embeddings_float_and_base64(client, gateway):
    floats = client.embeddings.create(model="embeddings", input=["alpha", "beta"], encoding_format="float")
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 8
    # The SDK asks for base64 by default and decodes it itself.
    decoded = client.embeddings.create(model="embeddings", input=["alpha", "beta"])
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    raw = httpx.post(
        gateway.url + "/v1/embeddings",
        headers={"Authorization": f"Bearer {AGENT_KEY}"},
        json={"model": "embeddings", "input": "alpha", "encoding_format": "base64"},
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == pytest.approx(floats.data[0].embedding, rel=1e-6)


def test_models_lists_auto_tiers_and_deployments(client):
    names = [m.id for m in client.models.list().data]
    assert names[:5] == ["auto", "fast", "medium", "large", "external"]
    assert "embeddings" in names and "fake-large" in names


def test_health_endpoints(gateway):
    health = httpx.get(gateway.url + "/health").json()
    assert health["status"] == "ok" and health["config_version"] == gateway.settings.version
    assert "redis" in health["dependencies"] and "database" in health["dependencies"]
    assert set(health["queue"]) == {"pending_review", "oldest_age_s"}
    assert httpx.get(gateway.url + "/health/live").status_code == 200
    assert httpx.get(gateway.url + "/health/ready").status_code == 200


# --- errors --------------------------------------------------------------------------------------


def _post(
    gateway,
    body: bytes | dict,
    key: str | None = AGENT_KEY,
    path: str = "/v1/chat/completions",
    headers: dict | None = None,
) -> httpx.Response:
    sent = {"Authorization": f"Bearer {key}"} if key else {}
    sent.update(headers or {})
    if isinstance(body, dict):
        return httpx.post(gateway.url + path, json=body, headers=sent, timeout=15)
    return httpx.post(
        gateway.url + path, content=body, headers={**sent, "content-type": "application/json"}, timeout=15
    )


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers["x-request-id"]
    return error


def test_malformed_json_and_wrong_types_are_400(gateway):
    assert _error(_post(gateway, b"{not json"), 400)["type"] == "invalid_request_error"
    assert _error(_post(gateway, b"[1, 2]"), 400)
    assert _error(_post(gateway, b""), 400)
    error = _error(_post(gateway, {"model": "fast", "messages": "hello"}), 400)
    assert error["param"] == "messages"
    error = _error(
        _post(gateway, {"model": "fast", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}), 400
    )
    assert error["param"] == "temperature"
    assert _error(_post(gateway, {"messages": [{"role": "user", "content": "x"}]}), 400)["param"] == "model"


def test_missing_or_wrong_key_is_401_and_never_reaches_upstream(gateway, fake):
    body = {"model": "fast", "messages": [{"role": "user", "content": "x"}]}
    assert _error(_post(gateway, body, key=None), 401)["type"] == "authentication_error"
    assert _error(_post(gateway, body, key="not-a-key"), 401)
    assert fake.requests_to("/chat/completions") == []
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_x_api_key_header_is_accepted(gateway):
    response = _post(
        gateway,
        {"model": "fast", "messages": [{"role": "user", "content": "x"}]},
        key=None,
        headers={"x-api-key": ADMIN_KEY},
    )
    assert response.status_code == 200


def test_unknown_model_is_404_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="llama-9000", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "model_not_found"


def test_body_over_limit_is_413(gateway):
    big = {"model": "fast", "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert _error(_post(gateway, big), 413)["code"] == "request_too_large"


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        ({"status": 429, "retry_after": 7}, 429),
        ({"status": 500}, 502),
        ({"malformed_json": True}, 502),
        ({"status": 503}, 503),
        ({"drop_connection": True}, 503),
    ],
)
def test_upstream_failures_map_to_gateway_errors(client, behaviour, status):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(
            model="fake-external", messages=[{"role": "user", "content": "x " + directive(**behaviour)}]
        )
    assert info.value.status_code == status, (behaviour, info.value)
    assert PROVIDER_KEY not in str(info.value.body)


def test_deadline_is_504(make_gateway):
    server = make_gateway(limits={"max_body_bytes": 65536, "request_timeout_s": 1})
    response = _post(server, {"model": "fast", "messages": [{"role": "user", "content": directive(latency_ms=3000)}]})
    assert _error(response, 504)["code"] == "upstream_timeout"


def test_rate_limit_from_upstream_carries_retry_after(gateway):
    response = _post(
        gateway, {"model": "large", "messages": [{"role": "user", "content": directive(status=429, retry_after=9)}]}
    )
    assert _error(response, 429)["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "9"


def test_connection_refused_is_503(make_gateway, fake):
    from tests.support.servers import base_config, deployment

    config = base_config(fake.url)
    config["model_list"][0] = deployment("fast", "nowhere", "http://127.0.0.1:9/v1")
    server = make_gateway(config)
    # Named deployment: no cascade to fall over to another tier.
    response = _post(server, {"model": "nowhere", "messages": [{"role": "user", "content": "x"}]})
    assert _error(response, 503)["code"] == "upstream_unavailable"
    # The tier itself falls over to the next tier up.
    response = _post(server, {"model": "fast", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200 and response.headers["x-gateway-tier"] == "medium"
    assert "UpstreamUnavailable -> medium" in response.headers["x-gateway-route-reason"]


def test_failure_after_stream_started_is_a_final_error_event(gateway):
    prompt = "go " + directive(text="a b c d e f g h", drop_after_chunks=3)
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {AGENT_KEY}"},
        json={"model": "fake-fast", "stream": True, "messages": [{"role": "user", "content": prompt}]},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] != "[DONE]"
    assert "error" in json.loads(events[-1])
    assert any("choices" in json.loads(e) for e in events[:-1])


def test_stall_mid_stream_ends_with_error_event_not_done(make_gateway, fake):
    server = make_gateway(limits={"max_body_bytes": 65536, "request_timeout_s": 2})
    prompt = "go " + directive(text="a b c d e f", stall_after_chunks=2, stall_s=30)
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {AGENT_KEY}"},
        json={"model": "fake-fast", "stream": True, "messages": [{"role": "user", "content": prompt}]},
        timeout=15,
    ) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] != "[DONE]" and "error" in json.loads(events[-1])


def test_caller_rate_limit_is_429_with_headers(make_gateway):
    server = make_gateway(limits={"max_body_bytes": 65536, "request_timeout_s": 10, "default_rpm": 2})
    body = {"model": "fast", "messages": [{"role": "user", "content": "x"}]}
    first = _post(server, body)
    assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "2"
    _post(server, body)
    third = _post(server, body)
    assert _error(third, 429)["code"] == "rate_limit_exceeded"
    assert int(third.headers["retry-after"]) >= 1
    assert third.headers["x-ratelimit-remaining-requests"] == "0"


# --- the allowlist ---------------------------------------------------------------------------------


@pytest.fixture
def attacker():
    """A loopback listener standing in for an attacker's server; counts connections."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join(1)
    listener.close()


@pytest.mark.parametrize(
    "field",
    [
        "api_base",
        "base_url",
        "api_key",
        "extra_headers",
        "mock_response",
        "fallbacks",
        "num_retries",
        "timeout",
        "custom_llm_provider",
        "litellm_logging_obj",
    ],
)
def test_litellm_steering_fields_are_refused(gateway, fake, attacker, field):
    url, accepted = attacker
    value = {"extra_headers": {"x": "y"}, "fallbacks": ["x"], "num_retries": 3, "timeout": 1}.get(field, url)
    base = {"model": "fast", "messages": [{"role": "user", "content": "x"}]}
    for body in ({**base, field: value}, {**base, "extra_body": {field: value}}, {**base, "metadata": {field: value}}):
        error = _error(_post(gateway, body), 400)
        assert error["code"] == "forbidden_parameter" and field in error["param"]
    assert accepted == []
    assert fake.requests_to("/chat/completions") == []


def test_sdk_extra_body_cannot_redirect_the_call(client, attacker, fake):
    url, accepted = attacker
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"api_base": url, "api_key": "sk-attacker"},
        )
    assert accepted == [] and fake.requests_to("/chat/completions") == []


def test_no_secret_in_responses_or_logs(gateway, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    for behaviour in (
        {"status": 401, "error_message": f"bad key {PROVIDER_KEY}"},
        {"status": 500},
        {"status": 400, "error_message": f"Incorrect API key provided: {PROVIDER_KEY}"},
    ):
        response = _post(
            gateway, {"model": "fake-medium", "messages": [{"role": "user", "content": directive(**behaviour)}]}
        )
        assert response.status_code >= 400
        assert PROVIDER_KEY not in response.text
        assert AGENT_KEY not in response.text
    joined = "\n".join(r.getMessage() for r in caplog.records)
    assert PROVIDER_KEY not in joined and AGENT_KEY not in joined
