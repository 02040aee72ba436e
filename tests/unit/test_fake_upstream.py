"""The fake upstream, exercised over real sockets with the real SDKs (openai, anthropic, httpx).

One server for the module (``reset()`` between tests); a few tests start their own to check
scripts and the command line.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from fake_upstream import Behaviour, FakeUpstream
from fake_upstream.behaviour import extract_directive
from fake_upstream.common import split_chunks

USER: list[Any] = [{"role": "user", "content": "Hello there"}]
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.reset()
    return server


@pytest.fixture
def oai(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def http(fake: FakeUpstream) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5) as client:
        yield client


@pytest.fixture
def claude(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key="x", max_retries=0)


def directive(**behaviour: object) -> str:
    return f"[[fake:{json.dumps(behaviour)}]]"


def ndjson_lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line]


# --- pure helpers -------------------------------------------------------------------------------


def test_directive_is_found_even_with_brackets_inside_the_json() -> None:
    obj, rest = extract_directive('before [[fake: {"text": "[[x]]", "tool_calls": []}]] after')
    assert obj == {"text": "[[x]]", "tool_calls": []}
    assert rest == "before  after"


def test_stream_pieces_join_back_to_the_text() -> None:
    text = "  one two\nthree  four "
    assert "".join(split_chunks(text, 1)) == text
    assert "".join(split_chunks(text, 3)) == text
    assert len(split_chunks("a b c d e", 2)) == 3


def test_unknown_behaviour_fields_are_rejected() -> None:
    with pytest.raises(ValueError, match="statsu"):
        Behaviour.from_dict({"statsu": 500})


# --- OpenAI -------------------------------------------------------------------------------------


def test_chat_json_has_default_answer_usage_and_provider_fields(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(model="gpt-fake", messages=USER)
    assert resp.choices[0].message.content == "This is a fake answer from gpt-fake."
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens == 2 and resp.usage.completion_tokens == 7
    assert resp.service_tier == "on_demand"
    assert resp.system_fingerprint


def test_chat_text_template_placeholders(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", text="#{n} {model} got: {last_user}", finish_reason="length")
    first = oai.chat.completions.create(model="gpt-fake", messages=USER)
    second = oai.chat.completions.create(model="gpt-fake", messages=USER)
    assert first.choices[0].message.content == "#1 gpt-fake got: Hello there"
    assert second.choices[0].message.content == "#2 gpt-fake got: Hello there"
    assert second.choices[0].finish_reason == "length"


def test_chat_stream_with_usage(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", text="one two three four five", completion_tokens=42)
    stream = oai.chat.completions.create(
        model="gpt-fake", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four five"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 42


def test_chat_tool_calls_json(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", tool_calls=[WEATHER, {"name": "noop", "arguments": "{}", "id": "call_mine"}])
    resp = oai.chat.completions.create(model="gpt-fake", messages=USER)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "noop"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert calls[0].id.startswith("call_") and calls[1].id == "call_mine"


def test_chat_tool_calls_stream_arrive_in_pieces(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", tool_calls=[WEATHER])
    chunks = list(oai.chat.completions.create(model="gpt-fake", messages=USER, stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].id.startswith("call_")
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    pieces = [d.function.arguments for d in deltas if d.function and d.function.arguments]
    assert len(pieces) >= 2
    assert json.loads("".join(pieces)) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_legacy_completions_json_and_stream(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("davinci-fake", text="completed {last_user}")
    resp = oai.completions.create(model="davinci-fake", prompt="the prompt")
    assert resp.choices[0].text == "completed the prompt"
    assert resp.usage is not None and resp.usage.prompt_tokens == 2
    stream = oai.completions.create(model="davinci-fake", prompt="p", stream=True)
    assert "".join(c.choices[0].text for c in stream if c.choices) == "completed p"


def test_embeddings_float_and_base64_agree(fake: FakeUpstream, oai: openai.OpenAI, http: httpx.Client) -> None:
    as_float = oai.embeddings.create(model="emb", input=["alpha", "beta"], encoding_format="float")
    as_b64 = oai.embeddings.create(model="emb", input=["alpha", "beta"])  # the SDK asks for base64
    assert [len(d.embedding) for d in as_float.data] == [8, 8]
    assert as_float.data[0].embedding == as_b64.data[0].embedding
    assert as_float.data[0].embedding != as_float.data[1].embedding
    raw = http.post("/v1/embeddings", json={"model": "emb", "input": "alpha", "encoding_format": "base64"})
    packed = base64.b64decode(raw.json()["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == as_float.data[0].embedding
    fake.set_behaviour("emb", embedding_dim=3)
    assert len(oai.embeddings.create(model="emb", input="x").data[0].embedding) == 3


def test_models_lists_scripted_and_seen_models(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("scripted-model", text="x")
    oai.chat.completions.create(model="seen-model", messages=USER)
    assert {"scripted-model", "seen-model"} <= {m.id for m in oai.models.list()}


def test_429_with_retry_after(fake: FakeUpstream, oai: openai.OpenAI, http: httpx.Client) -> None:
    fake.set_behaviour("gpt-fake", status=429, retry_after=7, error_message="slow down")
    with pytest.raises(openai.RateLimitError) as exc_info:
        oai.chat.completions.create(model="gpt-fake", messages=USER)
    assert exc_info.value.response.headers["retry-after"] == "7"
    raw = http.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": USER})
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "7"
    assert raw.json()["error"] == {
        "message": "slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_500_is_a_server_error(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", status=500)
    with pytest.raises(openai.InternalServerError) as exc_info:
        oai.chat.completions.create(model="gpt-fake", messages=USER, stream=True)
    assert exc_info.value.status_code == 500
    assert exc_info.value.body["type"] == "server_error"  # type: ignore[index]


def test_malformed_json_body_and_stream_line(fake: FakeUpstream, oai: openai.OpenAI, http: httpx.Client) -> None:
    fake.set_behaviour("gpt-fake", malformed_json=True)
    raw = http.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": USER})
    assert raw.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        raw.json()
    with pytest.raises(json.JSONDecodeError):
        oai.chat.completions.create(model="gpt-fake", messages=USER)
    with pytest.raises(json.JSONDecodeError):
        list(oai.chat.completions.create(model="gpt-fake", messages=USER, stream=True))


def test_drop_connection_is_a_connection_error(fake: FakeUpstream, oai: openai.OpenAI, http: httpx.Client) -> None:
    fake.set_behaviour("gpt-fake", drop_connection=True)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        http.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": USER})
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-fake", messages=USER)


def test_drop_mid_stream_after_some_chunks(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.set_behaviour("gpt-fake", drop_after_chunks=2)
    got: list[str] = []
    body = {"model": "gpt-fake", "messages": USER, "stream": True}
    with pytest.raises(httpx.RemoteProtocolError), http.stream("POST", "/v1/chat/completions", json=body) as r:
        got.extend(line for line in r.iter_lines() if line.startswith("data:"))
    assert len(got) == 3  # role chunk + 2 content chunks, no [DONE]


def test_stall_mid_stream_times_out_the_reader(fake: FakeUpstream) -> None:
    fake.set_behaviour("gpt-fake", stall_after_chunks=2)
    client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0, timeout=openai.Timeout(5, read=0.3))
    received: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in client.chat.completions.create(model="gpt-fake", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "This is "


def test_latency_delays_the_answer(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", latency_ms=150)
    started = time.perf_counter()
    oai.chat.completions.create(model="gpt-fake", messages=USER)
    assert time.perf_counter() - started >= 0.15


def test_in_prompt_directive_wins_and_is_stripped(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", status=500)
    content = "please " + directive(text="echo: {last_user}")
    resp = oai.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": content}])
    assert resp.choices[0].message.content == "echo: please"
    parts = [{"type": "text", "text": directive(status=503)}]
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": parts}])  # type: ignore[misc, list-item]


def test_bad_directive_is_a_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="directive"):
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "[[fake:{nope]]"}])


def test_enqueue_is_fifo_then_falls_back(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("gpt-fake", text="steady")
    fake.enqueue("gpt-fake", {"text": "one"}, {"status": 503})
    fake.enqueue("*", {"text": "any model"})
    first = oai.chat.completions.create(model="gpt-fake", messages=USER)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-fake", messages=USER)
    third = oai.chat.completions.create(model="gpt-fake", messages=USER)
    fourth = oai.chat.completions.create(model="gpt-fake", messages=USER)
    assert [first.choices[0].message.content, third.choices[0].message.content] == ["one", "any model"]
    assert fourth.choices[0].message.content == "steady"


def test_per_model_and_wildcard_behaviour(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    fake.set_behaviour("*", text="wildcard")
    fake.set_behaviour("special", text="special")
    assert oai.chat.completions.create(model="special", messages=USER).choices[0].message.content == "special"
    assert oai.chat.completions.create(model="other", messages=USER).choices[0].message.content == "wildcard"
    fake.clear_behaviour("*")
    assert "fake answer" in (oai.chat.completions.create(model="other", messages=USER).choices[0].message.content or "")


def test_requests_are_recorded(fake: FakeUpstream, oai: openai.OpenAI, http: httpx.Client) -> None:
    oai.chat.completions.create(model="gpt-fake", messages=USER, temperature=0.5)
    http.post("/openai/v1/chat/completions", json={"model": "groq-model", "messages": USER})
    http.post("/chat/completions", json={"model": "bare", "messages": USER})
    first = fake.requests[0]
    assert (first.method, first.path, first.model) == ("POST", "/v1/chat/completions", "gpt-fake")
    assert first.body["temperature"] == 0.5
    assert first.headers["authorization"] == "Bearer x"
    assert [r.model for r in fake.requests_to("/openai/")] == ["groq-model"]
    assert [r.model for r in fake.requests_to(model="bare")] == ["bare"]
    fake.clear_requests()
    assert fake.requests == []


def test_admin_api_over_http(fake: FakeUpstream, http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.put("/_fake/behaviour/qwen2.5:7b", json={"text": "admin"}).status_code == 200
    assert http.post("/_fake/enqueue/qwen2.5:7b", json=[{"text": "queued"}]).json()["queued"] == 1
    assert http.put("/_fake/behaviour/x", json={"bogus": 1}).status_code == 400
    body = {"model": "qwen2.5:7b", "messages": USER, "stream": False}
    assert http.post("/api/chat", json=body).json()["message"]["content"] == "queued"
    assert http.post("/api/chat", json=body).json()["message"]["content"] == "admin"
    recorded = http.get("/_fake/requests", params={"path": "/api/chat"}).json()
    assert [r["model"] for r in recorded] == ["qwen2.5:7b", "qwen2.5:7b"]
    assert http.delete("/_fake/requests").json() == {"cleared": 2}
    http.post("/_fake/reset")
    assert "fake answer" in http.post("/api/chat", json=body).json()["message"]["content"]


def test_script_default_and_models(tmp_path: Path) -> None:
    from fake_upstream import load_script

    path = tmp_path / "script.yaml"
    path.write_text("default: {text: from default}\nmodels:\n  m1: {text: from m1}\n")
    with FakeUpstream(load_script(path)) as fake:
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
        assert client.chat.completions.create(model="m1", messages=USER).choices[0].message.content == "from m1"
        assert client.chat.completions.create(model="m2", messages=USER).choices[0].message.content == "from default"


# --- Ollama -------------------------------------------------------------------------------------


def test_ollama_chat_streams_ndjson_by_default(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.set_behaviour("qwen2.5:7b", text="local answer here")
    r = http.post("/api/chat", json={"model": "qwen2.5:7b", "messages": USER})
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson_lines(r)
    assert all(not line["done"] for line in lines[:-1])
    assert "".join(line["message"]["content"] for line in lines) == "local answer here"
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["eval_count"] == 3 and final["prompt_eval_count"] == 2 and final["total_duration"] > 0


def test_ollama_chat_json_with_tool_calls(fake: FakeUpstream, http: httpx.Client) -> None:
    fake.set_behaviour("qwen2.5:7b", tool_calls=[WEATHER])
    r = http.post("/api/chat", json={"model": "qwen2.5:7b", "messages": USER, "stream": False})
    message = r.json()["message"]
    assert message["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    streamed = ndjson_lines(http.post("/api/chat", json={"model": "qwen2.5:7b", "messages": USER}))
    assert [c for line in streamed for c in line["message"].get("tool_calls", [])] == message["tool_calls"]


def test_ollama_generate_tags_embed_version_and_errors(fake: FakeUpstream, http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "llama3:8b", "prompt": "hi", "stream": False})
    assert r.json()["response"] == "This is a fake answer from llama3:8b." and r.json()["done"] is True
    lines = ndjson_lines(http.post("/api/generate", json={"model": "llama3:8b", "prompt": "hi"}))
    assert "".join(line["response"] for line in lines) == "This is a fake answer from llama3:8b."
    assert "llama3:8b" in [m["name"] for m in http.get("/api/tags").json()["models"]]
    embed = http.post("/api/embed", json={"model": "nomic", "input": ["a", "b"]}).json()
    assert len(embed["embeddings"]) == 2 and len(embed["embeddings"][0]) == 8
    assert http.get("/api/version").json()["version"]
    fake.set_behaviour("llama3:8b", status=500, error_message="model crashed")
    r = http.post("/api/generate", json={"model": "llama3:8b", "prompt": "hi"})
    assert (r.status_code, r.json()) == (500, {"error": "model crashed"})


# --- Anthropic ----------------------------------------------------------------------------------


def test_anthropic_messages_create_text_and_tool_use(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model="claude-fake", max_tokens=100, system="be brief", messages=USER)
    assert msg.content[0].type == "text" and msg.content[0].text == "This is a fake answer from claude-fake."
    assert msg.stop_reason == "end_turn" and msg.usage.input_tokens == 4
    fake.set_behaviour("claude-fake", text="Let me check.", tool_calls=[WEATHER])
    msg = claude.messages.create(model="claude-fake", max_tokens=100, messages=USER)
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    tool = msg.content[1]
    assert tool.type == "tool_use" and tool.input == {"city": "Paris"} and tool.id.startswith("toolu_")
    assert msg.stop_reason == "tool_use"


def test_anthropic_messages_stream(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.set_behaviour("claude-fake", text="streamed words here", tool_calls=[WEATHER])
    with claude.messages.stream(model="claude-fake", max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed words here"
    assert final.stop_reason == "tool_use"
    assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Paris"}


def test_anthropic_errors_have_anthropic_shape(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.set_behaviour("claude-fake", status=429, retry_after=1)
    with pytest.raises(anthropic.RateLimitError) as exc_info:
        claude.messages.create(model="claude-fake", max_tokens=10, messages=USER)
    assert exc_info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert exc_info.value.response.headers["retry-after"] == "1"


# --- command line -------------------------------------------------------------------------------


def test_python_m_fake_upstream_serves_with_script_and_latency(tmp_path: Path) -> None:
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"models": {"cli-model": {"text": "from the cli"}}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "fake_upstream", "--port", str(port), "--script", str(script), "--latency-ms", "1"]
    proc = subprocess.Popen(cmd, cwd=root)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        body = {"model": "cli-model", "messages": USER}
        answer = httpx.post(url + "/v1/chat/completions", json=body, timeout=5).json()
        assert answer["choices"][0]["message"]["content"] == "from the cli"
    finally:
        proc.terminate()
        proc.wait(5)
