"""`POST /v1/messages` (Claude Code's wire protocol) through the official `anthropic` SDK and the fake upstream."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.agent_clis import agent_cli
from tests.support.servers import AGENT_KEY, PROVIDER_KEY

MODEL = "claude-sonnet-4-5"  # aliased to auto by the test config (claude-* -> auto)
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def session() -> dict[str, str]:
    """A session of its own: auto-routed calls here must not pin the shared gateway's sessions to a tier."""
    return {"x-session-id": f"messages-test-{uuid.uuid4().hex}"}


def directive(**behaviour: object) -> str:
    return "[[fake:" + json.dumps(behaviour) + "]]"


def sent_body(fake: Any) -> dict[str, Any]:
    body: dict[str, Any] = fake.requests_to("/chat/completions")[-1].body
    return body


def squeeze(types: list[str]) -> list[str]:
    out: list[str] = []
    for kind in types:
        if not (out and kind == out[-1] == "content_block_delta"):
            out.append(kind)
    return out


@pytest.fixture
def claude(gateway: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=AGENT_KEY, max_retries=0, timeout=15, default_headers=session()
    )


def test_create_answers_in_anthropic_shape_with_gateway_headers(claude, fake):
    raw = claude.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "Hi " + directive(text="Hello, Claude user.")}],
    )
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Hello, Claude user."
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-gateway-tier"] == "fast" and raw.headers["x-gateway-model"] == "fake-fast"
    assert "alias claude-*" in raw.headers["x-gateway-route-reason"]
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    sent = sent_body(fake)
    assert sent["max_tokens"] == 100 and sent["messages"] == [
        {"role": "user", "content": "Hi " + directive(text="Hello, Claude user.")}
    ]


def test_bearer_token_and_beta_route(gateway):
    client = anthropic.Anthropic(
        base_url=gateway.url, auth_token=AGENT_KEY, max_retries=0, timeout=15, default_headers=session()
    )
    message = client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text"
    beta = client.beta.messages.create(
        model=MODEL,
        max_tokens=50,
        betas=["context-management-2025-06-27"],
        messages=[{"role": "user", "content": "hi " + directive(text="beta ok")}],
    )
    assert beta.content[0].text == "beta ok"
    raw = httpx.post(
        gateway.url + "/v1/messages?beta=true",
        timeout=15,
        headers={
            "x-api-key": AGENT_KEY,
            "anthropic-version": "2023-06-01",
            **session(),
            "anthropic-beta": "interleaved-thinking-2025-05-14",
        },
        json={"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert raw.status_code == 200 and raw.json()["type"] == "message"


def test_raw_stream_event_sequence(claude):
    words = [f"w{i}" for i in range(40)]
    events = list(
        claude.messages.create(
            model=MODEL,
            max_tokens=100,
            stream=True,
            messages=[{"role": "user", "content": directive(text=" ".join(words))}],
        )
    )
    types = [e.type for e in events]
    assert squeeze(types) == [
        "message_start",
        "content_block_start",
        "content_block_delta",  # the SDK hides ping
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert types.count("content_block_delta") >= 2
    start = events[0].message
    assert start.id.startswith("msg_") and start.content == [] and start.usage.input_tokens > 0
    assert events[1].content_block.type == "text" and events[1].index == 0
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text.split() == words
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens > 0


def test_sse_frames_name_each_event(gateway):
    with httpx.stream(
        "POST",
        gateway.url + "/v1/messages",
        headers={"x-api-key": AGENT_KEY, **session()},
        timeout=15,
        json={
            "model": MODEL,
            "max_tokens": 20,
            "stream": True,
            "messages": [{"role": "user", "content": directive(text="a b")}],
        },
    ) as response:
        assert response.status_code == 200 and response.headers["x-gateway-tier"] == "fast"
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert names == [p["type"] for p in payloads]
    assert names[:3] == ["message_start", "ping", "content_block_start"] and names[-1] == "message_stop"


def test_stream_helper(claude):
    with claude.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "x " + directive(text="streamed reply")}]
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "streamed reply" == final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def _tool_loop(claude: anthropic.Anthropic, fake: Any, stream: bool) -> None:
    fake.enqueue(
        "fake-large",
        {
            "text": "Checking.",
            "tool_calls": [{"id": "toolu_01", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"text": "It is 18 degrees in Paris."},
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with claude.messages.stream(model="fake-large", max_tokens=200, tools=[WEATHER_TOOL], messages=messages) as s:
            raw_types = [e.type for e in s]
            first = s.get_final_message()
        assert "input_json" in raw_types  # the SDK's event for input_json_delta
    else:
        first = claude.messages.create(model="fake-large", max_tokens=200, tools=[WEATHER_TOOL], messages=messages)
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    use = first.content[1]
    assert use.id == "toolu_01" and use.name == "get_weather" and use.input == {"city": "Paris"}

    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": '{"temp_c": 18}'}],
                },
                {"type": "text", "text": "Answer briefly."},
            ],
        }
    )
    final = claude.messages.create(model="fake-large", max_tokens=200, tools=[WEATHER_TOOL], messages=messages)
    assert final.content[0].text == "It is 18 degrees in Paris." and final.stop_reason == "end_turn"

    sent = sent_body(fake)
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "Current weather for a city",
            },
        }
    ]
    assistant, tool, user = sent["messages"][1:4]
    assert assistant["role"] == "assistant" and assistant["content"] == "Checking."
    assert assistant["tool_calls"] == [
        {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert tool == {"role": "tool", "tool_call_id": "toolu_01", "content": '{"temp_c": 18}'}
    assert user == {"role": "user", "content": "Answer briefly."}


def test_tool_loop(claude, fake):
    _tool_loop(claude, fake, stream=False)


def test_tool_loop_streaming(claude, fake):
    _tool_loop(claude, fake, stream=True)


def test_tool_use_stream_events(claude):
    ask = directive(tool_calls=[{"id": "toolu_9", "name": "lookup", "arguments": {"q": "gateway"}}])
    events = list(
        claude.messages.create(
            model="fake-large",
            max_tokens=100,
            stream=True,
            tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
            messages=[{"role": "user", "content": ask}],
        )
    )
    assert squeeze([e.type for e in events]) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    block = events[1].content_block
    assert block.type == "tool_use" and block.id == "toolu_9" and block.name == "lookup" and block.input == {}
    partial = "".join(e.delta.partial_json for e in events if e.type == "content_block_delta")
    assert json.loads(partial) == {"q": "gateway"}
    assert events[-2].delta.stop_reason == "tool_use"


def test_tool_result_forms_and_empty_text_beside_tool_use(claude, fake):
    claude.messages.create(
        model="fake-fast",
        max_tokens=50,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "two cities"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": ""},
                    {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": "cold"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_b",
                        "is_error": True,
                        "content": [{"type": "text", "text": "timeout"}, {"type": "text", "text": "retry later"}],
                    },
                ],
            },
            {"role": "user", "content": [{"type": "text", "text": "go on " + directive(text="Oslo is cold.")}]},
        ],
    )
    messages = sent_body(fake)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["toolu_a", "toolu_b"] and not messages[1].get("content")
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_a", "content": "cold"}
    assert messages[3]["tool_call_id"] == "toolu_b"
    assert messages[3]["content"] == "[tool error] timeout\nretry later"


def test_system_blocks_images_mid_conversation_system_and_unknown_fields(claude, fake):
    message = claude.messages.create(
        model=MODEL,
        max_tokens=64,
        system=[
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."},
        ],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "A pixel."},
                ],
            },
            {"role": "system", "content": "The user prefers French."},  # type: ignore[list-item]
            {"role": "user", "content": "ok " + directive(text="Sure.")},
        ],
        stop_sequences=["END"],
        metadata={"user_id": "user-1"},
        extra_body={  # sampling fields are gone from this SDK's signature, but agents still send them
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 40,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "context_management": {"edits": []},
            "output_config": {"effort": "low"},
            "service_tier": "auto",
            "container": None,
            "mcp_servers": [],
        },
    )
    assert message.content[0].text == "Sure."
    sent = sent_body(fake)
    assert sent["messages"][0] == {"role": "system", "content": "You are Claude Code.\n\nBe brief."}
    assert sent["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "text", "text": "what is this?"},
    ]
    assert sent["messages"][2] == {"role": "assistant", "content": "A pixel."}
    assert sent["messages"][3] == {"role": "system", "content": "The user prefers French."}
    assert sent["stop"] == ["END"] and sent["temperature"] == 0.5 and sent["top_p"] == 0.9
    for dropped in ("top_k", "thinking", "metadata", "context_management", "system"):
        assert dropped not in sent


def test_trailing_system_message_moves_before_the_last_turn(claude, fake):
    """Claude Code appends its environment notes as a system message after the user's turn."""
    claude.messages.create(
        model=MODEL,
        max_tokens=20,
        system="You are Claude Code.",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "fix the bug " + directive(text="ok")}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment\ncwd: /repo"}]},  # type: ignore[list-item]
        ],
    )
    roles = [(m["role"], m["content"][:13]) for m in sent_body(fake)["messages"]]
    assert roles == [("system", "You are Claud"), ("system", "# Environment"), ("user", "fix the bug [")]


def test_server_tools_and_unknown_blocks_are_dropped_with_a_warning(claude, fake):
    raw = claude.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=50,
        tools=[
            WEATHER_TOOL,
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "bash_20250124", "name": "bash"},
        ],
        tool_choice={"type": "any"},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "search_result", "source": "x", "title": "t", "content": []},
                ],
            }
        ],
    )
    assert raw.status_code == 200
    assert raw.headers["x-gateway-warning"] == (
        "dropped unsupported tools: web_search_20250305, bash_20250124; "
        "dropped unsupported content blocks: search_result"
    )
    sent = sent_body(fake)
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"] and sent["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_mapping(claude, fake, choice, expected):
    claude.messages.create(
        model="fake-fast",
        max_tokens=20,
        tools=[WEATHER_TOOL],
        tool_choice=choice,
        messages=[{"role": "user", "content": "x"}],
    )
    assert sent_body(fake)["tool_choice"] == expected


def test_max_tokens_stop_reason(claude):
    message = claude.messages.create(
        model="fake-fast",
        max_tokens=2,
        messages=[{"role": "user", "content": directive(text="cut", finish_reason="length")}],
    )
    assert message.stop_reason == "max_tokens"


def test_count_tokens(claude):
    small = claude.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hello there"}])
    big = claude.messages.count_tokens(
        model=MODEL,
        system=[{"type": "text", "text": "s" * 400}],
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "x" * 4000}],
    )
    assert 1 <= small.input_tokens < 10
    assert big.input_tokens > 1000 > small.input_tokens


# --- errors: Anthropic's shape ----------------------------------------------------------------------


def _anthropic_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    error: dict[str, Any] = body["error"]
    return error


def test_sdk_errors(gateway, claude):
    bad_key = anthropic.Anthropic(base_url=gateway.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as auth:
        bad_key.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert auth.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="mistral-large", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="mistral-large", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model=MODEL, max_tokens=5, messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": MODEL, "max_tokens": 5}, 400, "invalid_request_error"),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
            400,
            "invalid_request_error",
        ),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x" * 70_000}]}, 413, "request_too_large"),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "api_base": "http://127.0.0.1:9"},
            400,
            "invalid_request_error",
        ),
        (
            {"model": "fake-external", "messages": [{"role": "user", "content": directive(status=500)}]},
            502,
            "api_error",
        ),
        (
            {"model": "fake-external", "messages": [{"role": "user", "content": directive(status=503)}]},
            503,
            "overloaded_error",
        ),
        (
            {"model": "large", "messages": [{"role": "user", "content": directive(status=429, retry_after=9)}]},
            429,
            "rate_limit_error",
        ),
    ],
)
def test_error_shapes(gateway, body, status, kind):
    response = httpx.post(
        gateway.url + "/v1/messages",
        json=body,
        timeout=15,
        headers={"x-api-key": AGENT_KEY, "anthropic-version": "2023-06-01", **session()},
    )
    assert _anthropic_error(response, status)["type"] == kind
    assert PROVIDER_KEY not in response.text


def test_unknown_path_and_caller_rate_limit_are_anthropic_shaped(make_gateway):
    server = make_gateway(limits={"max_body_bytes": 65536, "request_timeout_s": 10, "default_rpm": 1})
    headers = {"x-api-key": AGENT_KEY}
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(server.url + "/v1/messages", json=body, headers=headers, timeout=15).status_code == 200
    limited = httpx.post(server.url + "/v1/messages", json=body, headers=headers, timeout=15)
    assert _anthropic_error(limited, 429)["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) >= 1
    unknown = httpx.post(server.url + "/v1/messages/batches", json={}, headers=headers, timeout=15)
    assert _anthropic_error(unknown, 404)["type"] == "not_found_error"


def test_failure_after_stream_started_is_an_error_event(claude):
    prompt = "go " + directive(text="a b c d e f g h", drop_after_chunks=3)
    stream = claude.messages.stream(model="fake-fast", max_tokens=50, messages=[{"role": "user", "content": prompt}])
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info, stream as events:  # the SDK raises on `event: error`
        seen.extend(event.type for event in events)
    assert "content_block_delta" in seen and "message_stop" not in seen
    assert info.value.body["type"] == "error" and info.value.body["error"]["message"]


# --- end to end: the real Claude Code CLI ------------------------------------------------------------


def test_claude_print_mode_runs_a_tool_loop_through_the_gateway(make_gateway, fake, tmp_path: Path):
    """`claude -p` against the gateway: the model asks for Bash, Claude Code runs it, the model answers.

    Needs Claude Code (`npm install -g @anthropic-ai/claude-code`, or CLAUDE_BIN=/path/to/claude). The main model
    is a named deployment so the scripted answers are not escalated; background calls go to another one.
    """
    claude_cli = agent_cli("claude")
    gateway = make_gateway(limits={"max_body_bytes": 4 * 1024 * 1024, "request_timeout_s": 30})  # ~80 KB bodies
    work = tmp_path / "work"
    work.mkdir()
    fake.enqueue(
        "fake-large",
        {
            "tool_calls": [
                {
                    "id": "toolu_e2e_1",
                    "name": "Bash",
                    "arguments": {"command": "echo gateway-e2e-ok", "description": "Print a marker"},
                }
            ]
        },
        {"text": "The command printed gateway-e2e-ok."},
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_AUTH_TOKEN": AGENT_KEY,
        "ANTHROPIC_MODEL": "fake-large",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "fake-fast",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    done = subprocess.run(
        [claude_cli, "-p", "Run the echo command", "--allowedTools", "Bash(echo:*)"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The command printed gateway-e2e-ok." in done.stdout
    sent = fake.requests_to("/chat/completions", model="fake-large")
    assert len(sent) == 2
    assert "Bash" in {t["function"]["name"] for t in sent[0].body["tools"]}
    tool = next(m for m in sent[1].body["messages"] if m["role"] == "tool")
    assert tool["tool_call_id"] == "toolu_e2e_1" and "gateway-e2e-ok" in tool["content"]
