"""`POST /v1/responses` (Codex's wire protocol) through the official `openai` SDK, backed by the fake upstream."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.agent_clis import agent_cli
from tests.support.servers import AGENT_KEY

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
REFUSAL = "I'm sorry, but I can't help with that request."
GOOD = (
    "A TCP connection starts with a three-way handshake: the client sends SYN, the server answers "
    "SYN-ACK, and the client confirms with ACK. After that both sides can exchange data."
)

TEXT_EVENTS_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
TEXT_EVENTS_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def auth() -> dict[str, str]:
    """The agent key, and a session of its own: auto-routed calls here must not pin the shared gateway's sessions."""
    return {"Authorization": f"Bearer {AGENT_KEY}", "x-session-id": f"responses-test-{uuid.uuid4().hex}"}


@pytest.fixture
def client(gateway: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url + "/v1",
        api_key=AGENT_KEY,
        max_retries=0,
        timeout=15,
        default_headers={"x-session-id": auth()["x-session-id"]},
    )


def directive(**behaviour: object) -> str:
    return "[[fake:" + json.dumps(behaviour) + "]]"


def sent_body(fake: Any) -> dict[str, Any]:
    body: dict[str, Any] = fake.requests_to("/chat/completions")[-1].body
    return body


def squeeze(types: list[str]) -> list[str]:
    """Event types with runs of the same delta type collapsed to one."""
    out: list[str] = []
    for kind in types:
        if not (out and kind == out[-1] and kind.endswith(".delta")):
            out.append(kind)
    return out


def test_text_answer_with_instructions_and_gateway_headers(client, fake):
    raw = client.responses.with_raw_response.create(
        model="gpt-5-codex",
        instructions="You are terse.",
        input="Say hello " + directive(text="Hello from the gateway."),
        store=False,
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        parallel_tool_calls=False,
        truncation="disabled",
        prompt_cache_key="session-1",
        service_tier="auto",
        user="u-1",
    )
    response = raw.parse()
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Hello from the gateway."
    message = response.output[0]
    assert message.type == "message" and message.id.startswith("msg_") and message.role == "assistant"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert raw.headers["x-gateway-tier"] == "fast" and raw.headers["x-gateway-model"] == "fake-fast"
    assert "alias" in raw.headers["x-gateway-route-reason"]
    assert raw.headers["x-gateway-status"] and raw.headers["x-request-id"].startswith("req_")
    sent = sent_body(fake)
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent["messages"][1]["role"] == "user"
    for ignored in ("store", "reasoning", "include", "truncation", "prompt_cache_key", "service_tier", "input"):
        assert ignored not in sent


def test_stream_event_sequence(client):
    words = [f"word{i}" for i in range(40)]  # long enough for several deltas, replayed or streamed
    events = list(client.responses.create(model="auto", input="count " + directive(text=" ".join(words)), stream=True))
    types = [e.type for e in events]
    assert squeeze(types) == [*TEXT_EVENTS_HEAD, "response.output_text.delta", *TEXT_EVENTS_TAIL]
    assert types.count("response.output_text.delta") >= 2
    assert [e.sequence_number for e in events] == list(range(len(events)))
    item_id = events[2].item.id
    assert item_id.startswith("msg_")
    for event in events[3:-1]:
        assert event.item_id == item_id if hasattr(event, "item_id") else event.item.id == item_id
        assert event.output_index == 0
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.split() == words
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    completed = events[-1].response
    assert completed.id == events[0].response.id and completed.status == "completed"
    assert completed.output[0].content[0].text == text
    assert completed.usage is not None and completed.usage.output_tokens > 0


def test_stream_helper_gives_the_final_response(client):
    with client.responses.stream(model="auto", input="hi " + directive(text="Streamed answer here.")) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Streamed answer here." == final.output_text


def test_sse_frames_name_each_event(gateway):
    with httpx.stream(
        "POST",
        gateway.url + "/v1/responses",
        headers=auth(),
        json={"model": "auto", "input": "x " + directive(text="a b"), "stream": True},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-gateway-tier"] == "fast"
        lines = [line for line in response.iter_lines() if line]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert names == [p["type"] for p in payloads] and names[-1] == "response.completed"
    assert "[DONE]" not in "".join(lines)


def _tool_round_trip(client: openai.OpenAI, fake: Any, stream: bool) -> None:
    fake.enqueue(
        "fake-large",
        {"tool_calls": [{"id": "call_weather_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"text": "It is 18 degrees in Paris."},
    )
    conversation: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": "Use tools when they help."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
    ]
    tools: Any = [WEATHER_TOOL]
    if stream:
        events = list(client.responses.create(model="fake-large", input=conversation, tools=tools, stream=True))
        types = squeeze([e.type for e in events])
        assert types == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
        added = events[2].item
        assert added.type == "function_call" and added.arguments == "" and added.call_id == "call_weather_1"
        assert added.name == "get_weather" and added.id.startswith("fc_")
        arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
        assert json.loads(arguments) == {"city": "Paris"}
        first = events[-1].response
    else:
        first = client.responses.create(model="fake-large", input=conversation, tools=tools)
    assert first.status == "completed"
    call = first.output[0]
    assert call.type == "function_call" and call.status == "completed"
    assert call.call_id == "call_weather_1" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}

    # Codex sends the whole conversation again, the model's items included, with the tool's output.
    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation.append({"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 18}'})
    if stream:
        with client.responses.stream(model="fake-large", input=conversation, tools=tools) as answer:
            final = answer.get_final_response()
    else:
        final = client.responses.create(model="fake-large", input=conversation, tools=tools)
    assert final.output_text == "It is 18 degrees in Paris."

    sent = sent_body(fake)
    assert sent["messages"][0] == {"role": "system", "content": "Use tools when they help."}
    assert sent["messages"][1] == {"role": "user", "content": "Weather in Paris?"}
    assistant, tool = sent["messages"][2], sent["messages"][3]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_weather_1"
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert tool == {"role": "tool", "tool_call_id": "call_weather_1", "content": '{"temp_c": 18}'}
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]


def test_tool_loop(client, fake):
    _tool_round_trip(client, fake, stream=False)


def test_tool_loop_streaming(client, fake):
    _tool_round_trip(client, fake, stream=True)


def test_text_then_tool_call_stream_gives_two_output_items(client):
    ask = directive(text="Let me check.", tool_calls=[{"id": "call_x", "name": "lookup", "arguments": {"q": "gw"}}])
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    events = list(client.responses.create(model="fake-large", input=ask, tools=tools, stream=True))
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == [(0, "message"), (1, "function_call")]
    done = [e for e in events if e.type == "response.output_item.done"]
    assert [e.item.type for e in done] == ["message", "function_call"]
    final = events[-1].response
    assert [item.type for item in final.output] == ["message", "function_call"]
    assert final.output[1].call_id == "call_x"


def test_history_shapes_are_translated(client, fake):
    """System/developer roles, part types, an image, and an assistant turn with empty text beside its tool call."""
    image = "data:image/png;base64,iVBORw0KGgo="
    client.responses.create(
        model="fake-fast",
        input=[
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            },
            {"type": "message", "role": "assistant", "content": ""},
            {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "call_b", "name": "g", "arguments": '{"x": 1}'},
            {"type": "function_call_output", "call_id": "call_a", "output": "A"},
            {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "B"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "done", "annotations": []}],
            },
            {"role": "user", "content": "next " + directive(text="ok")},
        ],
    )
    messages = sent_body(fake)["messages"]
    assert messages[0] == {"role": "system", "content": "sys"}
    assert messages[1]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
    ]
    assert messages[2]["role"] == "assistant" and [c["id"] for c in messages[2]["tool_calls"]] == ["call_a", "call_b"]
    assert not messages[2].get("content")
    assert messages[3] == {"role": "tool", "tool_call_id": "call_a", "content": "A"}
    assert messages[4] == {"role": "tool", "tool_call_id": "call_b", "content": "B"}
    assert messages[5] == {"role": "assistant", "content": "done"}
    assert messages[6]["role"] == "user" and len(messages) == 7


def test_sampling_fields_and_json_schema_format(client, fake):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    client.responses.create(
        model="fake-fast",
        input="json please " + directive(text='{"answer": "yes"}'),
        max_output_tokens=64,
        temperature=0.2,
        top_p=0.9,
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
        metadata={"task_type": "extraction"},
    )
    sent = sent_body(fake)
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.2 and sent["top_p"] == 0.9
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    assert "metadata" not in sent

    client.responses.create(model="fake-fast", input="x", text={"format": {"type": "json_object"}})
    assert sent_body(fake)["response_format"] == {"type": "json_object"}


def test_length_finish_is_incomplete(client):
    response = client.responses.create(
        model="fake-fast", input="x " + directive(text="cut off", finish_reason="length"), max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    events = list(
        client.responses.create(
            model="fake-fast",
            stream=True,
            max_output_tokens=2,
            input="x " + directive(text="cut off", finish_reason="length"),
        )
    )
    assert events[-1].type == "response.incomplete" and events[-1].response.status == "incomplete"


def test_unsupported_tools_are_dropped_with_a_warning(client, fake):
    tools: Any = [
        {"type": "web_search"},
        WEATHER_TOOL,
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:1"},
        {"type": "custom", "name": "apply_patch", "description": "patch"},
        {"type": "local_shell"},
        {"type": "web_search"},
    ]
    raw = client.responses.with_raw_response.create(model="fake-fast", input="x", tools=tools, tool_choice="auto")
    assert raw.parse().status == "completed"
    assert raw.headers["x-gateway-warning"] == (
        "dropped unsupported tools: web_search, file_search, mcp, custom, local_shell"
    )
    sent = sent_body(fake)
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]

    only_hosted = client.responses.with_raw_response.create(
        model="fake-fast", input="x", tools=[{"type": "web_search_preview"}], tool_choice={"type": "web_search_preview"}
    )
    assert only_hosted.status_code == 200 and "web_search_preview" in only_hosted.headers["x-gateway-warning"]
    assert "tools" not in sent_body(fake) and "tool_choice" not in sent_body(fake)


def test_previous_response_id_is_refused(client, fake):
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="auto", input="x", previous_response_id="resp_123")
    assert info.value.param == "previous_response_id"
    assert "stateless" in info.value.message and "full" in info.value.message
    assert fake.requests_to("/chat/completions") == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "input"),
        ({"model": "auto", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "auto", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"model": "auto", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0]"),
        ({"model": "auto", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"model": "auto", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(gateway, body, param):
    response = httpx.post(gateway.url + "/v1/responses", json=body, headers=auth(), timeout=15)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_errors_use_openai_shape(gateway, client):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0).responses.create(
            model="auto", input="x"
        )
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="llama-9000", input="x")
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model="fake-external", input="x " + directive(status=500))
    assert failed.value.status_code == 502


def test_steering_fields_are_refused(gateway, fake):
    response = httpx.post(
        gateway.url + "/v1/responses",
        headers=auth(),
        json={"model": "auto", "input": "x", "api_base": "http://127.0.0.1:9"},
        timeout=15,
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "forbidden_parameter"
    assert fake.requests_to("/chat/completions") == []


def test_failure_after_stream_started_is_a_final_error_event(client):
    events = list(
        client.responses.create(
            model="fake-fast", stream=True, input="go " + directive(text="a b c d e f g h", drop_after_chunks=3)
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in types
    assert types[-1] == "error" and "response.completed" not in types
    assert events[-1].message and events[-1].code


def test_both_agent_routes_escalate_a_bad_cheap_answer(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": REFUSAL})
    fake.set_behaviour("fake-medium", {"text": GOOD})
    server = make_gateway()
    responses = httpx.post(
        server.url + "/v1/responses",
        headers=auth(),  # a new session each: no pin
        timeout=15,
        json={"model": "gpt-5-codex", "input": "Explain how the TCP handshake works."},
    )
    assert responses.status_code == 200
    assert responses.json()["output"][0]["content"][0]["text"] == GOOD
    messages = httpx.post(
        server.url + "/v1/messages",
        headers=auth(),  # a new session each: no pin
        timeout=15,
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "How does the TCP handshake work?"}],
        },
    )
    assert messages.status_code == 200 and messages.json()["content"][0]["text"] == GOOD
    for answer in (responses, messages):
        assert answer.headers["x-gateway-tier"] == "medium"
        assert answer.headers["x-gateway-model"] == "fake-medium"
        assert "escalated to medium" in answer.headers["x-gateway-route-reason"]
        assert answer.headers["x-gateway-status"] == "approved"
    assert [r.model for r in fake.requests_to("/chat/completions")] == ["fake-fast", "fake-medium"] * 2

    with httpx.stream(
        "POST",
        server.url + "/v1/responses",
        headers=auth(),  # a new session each: no pin
        timeout=15,
        json={"model": "auto", "stream": True, "input": "Describe the TCP handshake, please."},
    ) as streamed:
        assert streamed.headers["x-gateway-tier"] == "medium"
        assert "escalated to medium" in streamed.headers["x-gateway-route-reason"]
        payloads = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: ")]
    assert payloads[-1]["type"] == "response.completed"
    assert payloads[-1]["response"]["output"][0]["content"][0]["text"] == GOOD


def test_agent_session_headers_keep_a_conversation_on_its_tier(make_gateway, fake):
    """Codex's `session-id` and Claude Code's `x-claude-code-session-id` key the session pin."""
    fake.set_behaviour("fake-fast", {"text": REFUSAL})
    fake.set_behaviour("fake-medium", {"text": GOOD})
    server = make_gateway()
    key = {"Authorization": f"Bearer {AGENT_KEY}"}

    def ask(path: str, session: dict[str, str], prompt: str) -> str:
        body: dict[str, Any] = (
            {"model": "gpt-5-codex", "input": prompt}
            if path == "/v1/responses"
            else {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": prompt}]}
        )
        answer = httpx.post(server.url + path, json=body, headers={**key, **session}, timeout=15)
        assert answer.status_code == 200, answer.text
        return answer.headers["x-gateway-route-reason"]

    for path, header in (("/v1/responses", "session-id"), ("/v1/messages", "x-claude-code-session-id")):
        session = {header: f"{header}-{uuid.uuid4().hex}"}
        assert "escalated to medium" in ask(path, session, f"Explain the TCP handshake ({path}).")
        assert "pinned to medium by session" in ask(path, session, f"Now explain UDP ({path}).")
        other = {header: f"{header}-{uuid.uuid4().hex}"}
        assert "pinned" not in ask(path, other, f"Now explain UDP ({path}).")


# --- end to end: the real Codex CLI ------------------------------------------------------------------

CODEX_CONFIG = """\
model = "fake-large"
model_provider = "gateway"

[model_providers.gateway]
name = "llm-gateway"
base_url = "{url}/v1"
env_key = "LLM_GATEWAY_API_KEY"
wire_api = "responses"
"""


def test_codex_exec_runs_a_tool_loop_through_the_gateway(make_gateway, fake, tmp_path: Path):
    """`codex exec` against the gateway: the model asks for a shell command, Codex runs it, the model answers.

    Needs the Codex CLI (`npm install -g @openai/codex`, or CODEX_BIN=/path/to/codex). The model is a named
    deployment so the scripted answers are not escalated; docs/agents.md uses `model = "auto"`.
    """
    codex = agent_cli("codex")
    gateway = make_gateway(limits={"max_body_bytes": 4 * 1024 * 1024, "request_timeout_s": 30})  # Codex sends ~40 KB
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(CODEX_CONFIG.format(url=gateway.url))
    fake.enqueue(
        "fake-large",
        {"tool_calls": [{"id": "call_codex_1", "name": "exec_command", "arguments": {"cmd": "echo gateway-e2e-ok"}}]},
        {"text": "The command printed gateway-e2e-ok."},
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "LLM_GATEWAY_API_KEY": AGENT_KEY,
    }
    done = subprocess.run(
        [codex, "exec", "--skip-git-repo-check", "-s", "danger-full-access", "Run the echo command"],
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
    assert {"exec_command"} <= {t["function"]["name"] for t in sent[0].body["tools"]}
    tool = next(m for m in sent[1].body["messages"] if m["role"] == "tool")
    assert tool["tool_call_id"] == "call_codex_1" and "gateway-e2e-ok" in tool["content"]
