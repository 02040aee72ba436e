"""Anthropic Messages (`POST /v1/messages`, what Claude Code speaks) <-> `ChatRequest`/`ChatResponse`.

    to_chat(body)             Messages request -> `MessagesCall` (a ChatRequest plus the model asked for)
    count_tokens(call)        the approximate input size (characters / 4), for /v1/messages/count_tokens
    message_object(...)       ChatResponse -> Anthropic `message`
    stream_events(...)        OpenAI chunk stream -> Anthropic events (message_start ... message_stop)

Blocks map onto OpenAI chat: text and image blocks become content parts, `tool_use` blocks become
the assistant's `tool_calls` (ids kept), `tool_result` blocks become `tool` messages placed before
the rest of that user turn. `thinking` blocks, `cache_control`, `top_k` and the fields Claude Code
sends for features the gateway does not offer (`thinking`, `context_management`, `mcp_servers`,
...) are ignored; server tools (web_search, bash, text_editor, ...) and unknown block types are
dropped and named in `MessagesCall.warnings`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from core.errors import GatewayError, InvalidRequest
from core.types import ChatRequest, ChatResponse
from proxy.schemas import OpenModel, validate

from . import collapse, deltas, new_id, settle_trailing_system, warning

log = logging.getLogger("gateway.messages")

_SILENT_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class MessagesBody(OpenModel):
    model: str = Field(min_length=1)
    messages: list[Any] = Field(min_length=1)
    system: str | list[Any] | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[Any] | None = None
    tool_choice: dict[str, Any] | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None


@dataclass(slots=True)
class MessagesCall:
    model: str
    chat: ChatRequest
    warnings: list[str] = field(default_factory=list)


# --- request ---------------------------------------------------------------------------------------


def to_chat(body: Any, task_type: str | None = None) -> MessagesCall:
    parsed: MessagesBody = validate(MessagesBody, body)
    dropped_blocks: list[str] = []
    messages: list[dict[str, Any]] = []
    system = _system_text(parsed.system, "system")
    if system:
        messages.append({"role": "system", "content": system})
    for index, message in enumerate(parsed.messages):
        messages.extend(_message(message, f"messages.{index}", dropped_blocks))

    params: dict[str, Any] = {}
    tools, dropped_tools = _tools(parsed.tools or [])
    if tools:
        params["tools"] = tools
        choice = parsed.tool_choice or {}
        mapped = _tool_choice(choice)
        if mapped is not None:
            params["tool_choice"] = mapped
        if choice.get("disable_parallel_tool_use") is True:
            params["parallel_tool_calls"] = False
    if parsed.max_tokens:
        params["max_tokens"] = parsed.max_tokens
    if parsed.stop_sequences:
        params["stop"] = parsed.stop_sequences
    if parsed.temperature is not None:
        params["temperature"] = parsed.temperature
    if parsed.top_p is not None:
        params["top_p"] = parsed.top_p
    metadata = parsed.metadata or {}
    chat = ChatRequest(
        messages=settle_trailing_system(messages),
        params=params,
        stream=parsed.stream,
        task_type=task_type or _str_or_none(metadata.get("task_type")),
        language=_str_or_none(metadata.get("language")),
    )
    warnings = [w for w in (warning("tools", dropped_tools), warning("content blocks", dropped_blocks)) if w]
    return MessagesCall(model=parsed.model, chat=chat, warnings=warnings)


def _system_text(system: Any, where: str) -> str:
    """`system` (or a mid-conversation system message's content): a string or a list of text blocks."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        texts = []
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise InvalidRequest(f"'{where}.{i}' must be a text block", param=f"{where}.{i}")
            texts.append(str(block.get("text") or ""))
        return "\n\n".join(texts)
    raise InvalidRequest(f"'{where}' must be a string or a list of text blocks", param=where)


def _message(message: Any, where: str, dropped: list[str]) -> list[dict[str, Any]]:
    if not isinstance(message, dict):
        raise InvalidRequest(f"'{where}' must be an object", param=where)
    role = message.get("role")
    content = message.get("content")
    if role == "system":  # not in Anthropic's API, but some clients send it: keep it where it is
        return [{"role": "system", "content": _system_text(content, f"{where}.content")}]
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"'{where}.role' must be 'user' or 'assistant'", param=f"{where}.role")
    if content is None or isinstance(content, str):
        return [{"role": role, "content": content or ""}]
    if not isinstance(content, list):
        raise InvalidRequest(f"'{where}.content' must be a string or a list of blocks", param=f"{where}.content")
    if role == "assistant":
        return [_assistant(content, where, dropped)]
    return _user(content, where, dropped)


def _assistant(blocks: list[Any], where: str, dropped: list[str]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        kind = _block_type(block, f"{where}.content.{i}")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            at = f"{where}.content.{i}"
            arguments = block.get("input")
            calls.append(
                {
                    "id": _required_str(block, "id", at),
                    "type": "function",
                    "function": {
                        "name": _required_str(block, "name", at),
                        "arguments": json.dumps(arguments if arguments is not None else {}),
                    },
                }
            )
        elif kind not in _SILENT_BLOCKS:
            dropped.append(kind)
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def _user(blocks: list[Any], where: str, dropped: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}.content.{i}"
        kind = _block_type(block, at)
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text") or "")})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "tool_result":
            text = _result_text(block.get("content"), f"{at}.content")
            if block.get("is_error"):
                text = "[tool error] " + text
            results.append({"role": "tool", "tool_call_id": _required_str(block, "tool_use_id", at), "content": text})
        elif kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
            parts.append({"type": "text", "text": str(block["source"].get("data") or "")})
        elif kind not in _SILENT_BLOCKS:
            dropped.append(kind)
    # OpenAI wants tool results right after the assistant's calls; the rest of the turn follows them.
    if parts or not results:
        results.append({"role": "user", "content": collapse(parts) if parts else ""})
    return results


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") or "image/png"
            return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{source['data']}"}}
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise InvalidRequest(f"'{where}.source' must be a base64 or url image source", param=f"{where}.source")


def _result_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, block in enumerate(content):
            kind = _block_type(block, f"{where}.{i}")
            texts.append(str(block.get("text") or "") if kind == "text" else f"[{kind} omitted]")
        return "\n".join(texts)
    raise InvalidRequest(f"'{where}' must be a string or a list of blocks", param=where)


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequest(f"'{where}' must be a content block with a 'type'", param=where)
    kind: str = block["type"]
    return kind


def _required_str(block: dict[str, Any], key: str, where: str) -> str:
    value = block.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{where}.{key}' is required (a non-empty string)", param=f"{where}.{key}")
    return value


def _tools(tools: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    chat: list[dict[str, Any]] = []
    dropped: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"'tools.{index}' must be an object", param=f"tools.{index}")
        kind = tool.get("type")
        if kind not in (None, "custom") or not isinstance(tool.get("input_schema"), dict):
            dropped.append(str(kind or tool.get("name") or "unknown"))  # a server tool the gateway cannot run
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'tools.{index}.name' is required", param=f"tools.{index}.name")
        function: dict[str, Any] = {"name": name, "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        chat.append({"type": "function", "function": function})
    return chat, dropped


def _tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if kind == "auto":
        return "auto"
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def count_tokens(chat: ChatRequest) -> int:
    """Roughly how many tokens the request's input is: characters / 4 over system, messages and tools."""
    chars = 0
    for message in chat.messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text") or "")) if p.get("type") == "text" else 400 for p in content)
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    if chat.tools:
        chars += len(json.dumps(chat.tools, separators=(",", ":")))
    return max(1, chars // 4)


# --- response --------------------------------------------------------------------------------------


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    if finish_reason == "length":
        return "max_tokens"
    if has_tool_calls or finish_reason == "tool_calls":
        return "tool_use"
    if finish_reason == "content_filter":
        return "refusal"
    return "end_turn"


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the `input` object Anthropic clients expect."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def message_object(answer: ChatResponse, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text or not answer.tool_calls:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": str(function.get("name") or ""),
                "input": tool_input(function.get("arguments") or ""),
            }
        )
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(answer.finish_reason, bool(answer.tool_calls)),
        "stop_sequence": None,
        "usage": _usage(answer.prompt_tokens, answer.completion_tokens),
    }


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def error_event(exc: GatewayError) -> dict[str, Any]:
    return exc.to_anthropic_body()


# --- stream ----------------------------------------------------------------------------------------


class _Blocks:
    """Content-block bookkeeping for one streamed message."""

    def __init__(self) -> None:
        self.index = -1
        self.kind: str | None = None  # "text" | "tool_use" | None (no open block)
        self.tool_index: int | None = None
        self.has_tools = False

    def open(self, kind: str, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self.close()
        self.index += 1
        self.kind = kind
        return [*events, {"type": "content_block_start", "index": self.index, "content_block": block}]

    def close(self) -> list[dict[str, Any]]:
        if self.kind is None:
            return []
        self.kind = None
        self.tool_index = None
        return [{"type": "content_block_stop", "index": self.index}]

    def text(self, delta: str) -> list[dict[str, Any]]:
        events = [] if self.kind == "text" else self.open("text", {"type": "text", "text": ""})
        events.append(
            {"type": "content_block_delta", "index": self.index, "delta": {"type": "text_delta", "text": delta}}
        )
        return events

    def tool(self, piece: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = piece.get("index", 0)
        function = piece.get("function") or {}
        if self.kind != "tool_use" or self.tool_index != index:
            events = self.open(
                "tool_use",
                {
                    "type": "tool_use",
                    "id": piece.get("id") or new_id("toolu_"),
                    "name": str(function.get("name") or ""),
                    "input": {},
                },
            )
            self.tool_index = index
            self.has_tools = True
        if function.get("arguments"):
            events.append(
                {
                    "type": "content_block_delta",
                    "index": self.index,
                    "delta": {"type": "input_json_delta", "partial_json": function["arguments"]},
                }
            )
        return events


async def stream_events(
    call: MessagesCall, chunks: AsyncIterator[dict[str, Any]], model: str
) -> AsyncIterator[dict[str, Any]]:
    """Anthropic events for a stream of OpenAI chunks; a failure after the start is one final `error` event."""
    estimate = count_tokens(call.chat)
    yield {
        "type": "message_start",
        "message": {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(estimate, 0),
        },
    }
    yield {"type": "ping"}
    blocks = _Blocks()
    finish: str | None = None
    usage: dict[str, Any] = {}
    try:
        async for kind, value in deltas(chunks):
            if kind == "text":
                for event in blocks.text(value):
                    yield event
            elif kind == "tool":
                for event in blocks.tool(value):
                    yield event
            elif kind == "finish":
                finish = value
            else:
                usage = value
    except GatewayError as exc:
        yield error_event(exc)
        return
    except Exception:
        log.exception("messages stream failed")
        yield error_event(GatewayError("internal gateway error while streaming"))
        return
    if blocks.index < 0:  # an empty answer is still one (empty) text block
        for event in blocks.open("text", {"type": "text", "text": ""}):
            yield event
    for event in blocks.close():
        yield event
    input_tokens = int(usage.get("prompt_tokens") or estimate)
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(finish, blocks.has_tools), "stop_sequence": None},
        "usage": {"input_tokens": input_tokens, "output_tokens": int(usage.get("completion_tokens") or 0)},
    }
    yield {"type": "message_stop"}
