"""OpenAI Responses API (`POST /v1/responses`, what Codex speaks) <-> `ChatRequest`/`ChatResponse`.

    to_chat(body)            Responses request -> `ResponsesCall` (a ChatRequest plus what to echo)
    response_object(...)     ChatResponse -> Responses `response` object
    stream_events(...)       OpenAI chunk stream -> Responses events (dicts with `type`, `sequence_number`)

The gateway is stateless: `previous_response_id` is refused (the client sends the whole input, as
Codex does with `store: false`). Only function tools can be served through chat completions; other
tool types (web_search, file_search, mcp, custom, ...) are dropped and named in
`ResponsesCall.warnings`. Request fields the gateway has no use for (`store`, `reasoning`,
`include`, `truncation`, `prompt_cache_key`, `service_tier`, `user`, ...) are ignored.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from core.errors import GatewayError, InvalidRequest
from core.types import ChatRequest, ChatResponse
from proxy.schemas import OpenModel, validate

from . import collapse, deltas, new_id, settle_trailing_system, text_of_parts, warning

log = logging.getLogger("gateway.responses")

# Input items that carry nothing a chat model can use again (encrypted reasoning, server-side tool
# calls the gateway never made): dropped without a warning.
_SILENT_ITEMS = frozenset(
    {
        "reasoning",
        "compaction",
        "web_search_call",
        "file_search_call",
        "image_generation_call",
        "code_interpreter_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_call",
    }
)


class ResponsesBody(OpenModel):
    model: str = Field(min_length=1)
    input: str | list[Any]
    instructions: str | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    text: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream: bool = False
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None


@dataclass(slots=True)
class ResponsesCall:
    """A translated request: what goes through the pipeline, and what the answer echoes back."""

    model: str
    chat: ChatRequest
    echo: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# --- request ---------------------------------------------------------------------------------------


def to_chat(body: Any, task_type: str | None = None) -> ResponsesCall:
    if isinstance(body, dict) and body.get("previous_response_id"):
        raise InvalidRequest(
            "previous_response_id is not supported: this gateway is stateless and stores no responses. "
            "Send the full conversation in 'input' (as Codex does with store: false).",
            param="previous_response_id",
        )
    parsed: ResponsesBody = validate(ResponsesBody, body)
    messages: list[dict[str, Any]] = []
    if parsed.instructions:
        messages.append({"role": "system", "content": parsed.instructions})
    dropped_items: list[str] = []
    if isinstance(parsed.input, str):
        messages.append({"role": "user", "content": parsed.input})
    else:
        messages.extend(_input_messages(parsed.input, dropped_items))
    if not messages:
        raise InvalidRequest("'input' holds no message the model could answer", param="input")

    params: dict[str, Any] = {}
    tools, echo_tools, dropped_tools = _tools(parsed.tools or [])
    if tools:
        params["tools"] = tools
        choice = _tool_choice(parsed.tool_choice)
        if choice is not None:
            params["tool_choice"] = choice
    if parsed.max_output_tokens:
        params["max_tokens"] = parsed.max_output_tokens
    if parsed.temperature is not None:
        params["temperature"] = parsed.temperature
    if parsed.top_p is not None:
        params["top_p"] = parsed.top_p
    text_format = (parsed.text or {}).get("format")
    response_format = _response_format(text_format)
    if response_format is not None:
        params["response_format"] = response_format

    metadata = parsed.metadata or {}
    chat = ChatRequest(
        messages=settle_trailing_system(messages),
        params=params,
        stream=parsed.stream,
        task_type=task_type or _str_or_none(metadata.get("task_type")),
        language=_str_or_none(metadata.get("language")),
    )
    echo = {
        "instructions": parsed.instructions,
        "tools": echo_tools,
        "tool_choice": parsed.tool_choice if isinstance(parsed.tool_choice, str | dict) and tools else "auto",
        "parallel_tool_calls": parsed.parallel_tool_calls if parsed.parallel_tool_calls is not None else True,
        "temperature": parsed.temperature,
        "top_p": parsed.top_p,
        "max_output_tokens": parsed.max_output_tokens,
        "metadata": {k: v for k, v in metadata.items() if isinstance(v, str)},
        "text": {"format": text_format if isinstance(text_format, dict) else {"type": "text"}},
    }
    warnings = [w for w in (warning("tools", dropped_tools), warning("input items", dropped_items)) if w]
    return ResponsesCall(model=parsed.model, chat=chat, echo=echo, warnings=warnings)


def _input_messages(items: list[Any], dropped: list[str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{where}' must be an object", param=where)
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = {
                "id": _required_str(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": _required_str(item, "name", where),
                    "arguments": _arguments(item.get("arguments")),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)  # parallel calls, or text then calls: one turn
                if not last.get("content"):
                    last["content"] = None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _required_str(item, "call_id", where),
                    "content": _output_text(item.get("output")),
                }
            )
        elif kind == "item_reference":
            raise InvalidRequest(
                f"'{where}' is an item_reference: this gateway is stateless and stores no items; send the item itself",
                param=where,
            )
        elif kind in _SILENT_ITEMS:
            continue
        else:
            dropped.append(str(kind))
    return messages


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise InvalidRequest(f"'{where}.role' must be user, assistant, system or developer", param=f"{where}.role")
    content = item.get("content")
    if content is None or isinstance(content, str):
        parts: list[dict[str, Any]] = [{"type": "text", "text": content or ""}]
    elif isinstance(content, list):
        parts = [_part(p, f"{where}.content[{i}]") for i, p in enumerate(content)]
    else:
        raise InvalidRequest(f"'{where}.content' must be a string or a list of parts", param=f"{where}.content")
    if role == "assistant":
        return {"role": "assistant", "content": text_of_parts(parts)}
    return {"role": "system" if role == "developer" else role, "content": collapse(parts)}


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{where}' must be an object", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"'{where}' needs an image_url (a URL or a data: URL); file_id references are not supported "
                "by this stateless gateway",
                param=where,
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(
        f"'{where}' has content type {kind!r}, which this gateway does not support "
        "(use input_text, output_text or input_image)",
        param=where,
    )


def _output_text(output: Any) -> str:
    """A function_call_output's `output`: a string, or a list of input_text / input_image parts."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = []
        for part in output:
            if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict):
                texts.append(f"[{part.get('type', 'part')} omitted]")
        return "\n".join(texts)
    return json.dumps(output)


def _arguments(value: Any) -> str:
    if value is None:
        return "{}"
    return value if isinstance(value, str) else json.dumps(value)


def _required_str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{where}.{key}' is required (a non-empty string)", param=f"{where}.{key}")
    return value


def _tools(tools: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(chat tools, the Responses tools they came from, the types that were dropped)."""
    chat: list[dict[str, Any]] = []
    echo: list[dict[str, Any]] = []
    dropped: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"'tools[{index}]' must be an object", param=f"tools[{index}]")
        if tool.get("type") != "function":
            dropped.append(str(tool.get("type") or "unknown"))
            continue
        nested = tool.get("function")
        spec: dict[str, Any] = nested if isinstance(nested, dict) else tool  # tolerate the chat shape
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'tools[{index}].name' is required", param=f"tools[{index}].name")
        function: dict[str, Any] = {"name": name}
        if spec.get("description"):
            function["description"] = spec["description"]
        parameters = spec.get("parameters")
        function["parameters"] = parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
        if spec.get("strict") is True:
            function["strict"] = True
        chat.append({"type": "function", "function": function})
        echo.append(
            {
                "type": "function",
                "name": name,
                "description": function.get("description"),
                "parameters": function["parameters"],
                "strict": bool(spec.get("strict")),
            }
        )
    return chat, echo, dropped


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("name"), str):
            return {"type": "function", "function": {"name": choice["name"]}}
        if kind == "allowed_tools" and choice.get("mode") in ("auto", "required"):
            return choice["mode"]
    return None  # a hosted tool's choice: that tool was dropped, let the model decide


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema: dict[str, Any] = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("description"):
            schema["description"] = fmt["description"]
        if fmt.get("strict") is not None:
            schema["strict"] = bool(fmt["strict"])
        return {"type": "json_schema", "json_schema": schema}
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- response --------------------------------------------------------------------------------------


def usage_object(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _status(finish_reason: str | None) -> tuple[str, dict[str, str] | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    call: ResponsesCall,
    response_id: str,
    created_at: int,
    model: str,
    output: list[dict[str, Any]],
    status: str,
    usage: dict[str, Any] | None,
    incomplete: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        **call.echo,
    }


def answer_object(call: ResponsesCall, answer: ChatResponse, model: str) -> dict[str, Any]:
    """The whole answer as a Responses `response` object."""
    status, incomplete = _status(answer.finish_reason)
    item_status = "incomplete" if status == "incomplete" else "completed"
    output: list[dict[str, Any]] = []
    if answer.text or not answer.tool_calls:
        output.append(message_item(new_id("msg_"), answer.text, item_status))
    for tool_call in answer.tool_calls:
        function = tool_call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc_"),
                tool_call.get("id") or new_id("call_"),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                item_status,
            )
        )
    return response_object(
        call,
        new_id("resp_"),
        int(time.time()),
        model,
        output,
        status,
        usage_object(answer.prompt_tokens, answer.completion_tokens),
        incomplete,
    )


# --- stream ----------------------------------------------------------------------------------------


class _Events:
    """The Responses event sequence for one stream, built chunk by chunk."""

    def __init__(self, call: ResponsesCall, model: str) -> None:
        self.call = call
        self.model = model
        self.id = new_id("resp_")
        self.created_at = int(time.time())
        self.seq = 0
        self.output: list[dict[str, Any]] = []  # finished items, in output order
        self.open: dict[str, Any] | None = None  # the item being streamed
        self.open_index = -1
        self.tool_index: int | None = None  # the chunk-side index of the open function call
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def snapshot(
        self,
        status: str,
        output: list[dict[str, Any]] | None = None,
        usage: dict[str, Any] | None = None,
        incomplete: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return response_object(self.call, self.id, self.created_at, self.model, output or [], status, usage, incomplete)

    def start(self) -> list[dict[str, Any]]:
        return [
            self.event("response.created", response=self.snapshot("in_progress")),
            self.event("response.in_progress", response=self.snapshot("in_progress")),
        ]

    def _on_open(self, kind: str, **fields: Any) -> dict[str, Any]:
        """An event about the item being streamed (message events add `content_index`)."""
        assert self.open is not None
        if self.open["type"] == "message":
            fields["content_index"] = 0
        return self.event(kind, item_id=self.open["id"], output_index=self.open_index, **fields)

    def _add(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        events = self.close()
        self.open = item
        self.open_index = len(self.output)
        events.append(self.event("response.output_item.added", output_index=self.open_index, item=_copy(item)))
        return events

    def _open_message(self) -> list[dict[str, Any]]:
        item = message_item(new_id("msg_"), "", "in_progress")
        part = item["content"].pop()
        events = self._add(item)
        item["content"].append(part)
        events.append(self._on_open("response.content_part.added", part=dict(part)))
        return events

    def text(self, delta: str) -> list[dict[str, Any]]:
        events = [] if self.open is not None and self.open["type"] == "message" else self._open_message()
        assert self.open is not None
        self.open["content"][0]["text"] += delta
        events.append(self._on_open("response.output_text.delta", delta=delta, logprobs=[]))
        return events

    def tool_call(self, piece: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = piece.get("index", 0)
        function = piece.get("function") or {}
        if self.open is None or self.open["type"] != "function_call" or self.tool_index != index:
            call_id = piece.get("id") or new_id("call_")
            events = self._add(
                function_call_item(new_id("fc_"), call_id, str(function.get("name") or ""), "", "in_progress")
            )
            self.tool_index = index
        assert self.open is not None
        if function.get("name") and not self.open["name"]:
            self.open["name"] = function["name"]
        if function.get("arguments"):
            self.open["arguments"] += function["arguments"]
            events.append(self._on_open("response.function_call_arguments.delta", delta=function["arguments"]))
        return events

    def close(self, status: str = "completed") -> list[dict[str, Any]]:
        item = self.open
        if item is None:
            return []
        if item["type"] == "message":
            part = item["content"][0]
            events = [
                self._on_open("response.output_text.done", text=part["text"], logprobs=[]),
                self._on_open("response.content_part.done", part=dict(part)),
            ]
        else:
            events = [
                self._on_open("response.function_call_arguments.done", name=item["name"], arguments=item["arguments"])
            ]
        item["status"] = status
        events.append(self.event("response.output_item.done", output_index=self.open_index, item=_copy(item)))
        self.output.append(item)
        self.open = None
        self.tool_index = None
        return events

    def finish(self) -> list[dict[str, Any]]:
        status, incomplete = _status(self.finish_reason)
        events = self.close("incomplete" if status == "incomplete" else "completed")
        if not self.output:  # an empty answer is still one (empty) message
            events += self._open_message()
            events += self.close()
        usage = usage_object(int(self.usage.get("prompt_tokens") or 0), int(self.usage.get("completion_tokens") or 0))
        kind = "response.completed" if status == "completed" else "response.incomplete"
        events.append(
            self.event(kind, response=self.snapshot(status, [_copy(i) for i in self.output], usage, incomplete))
        )
        return events


def _copy(item: dict[str, Any]) -> dict[str, Any]:
    copied = dict(item)
    if "content" in copied:
        copied["content"] = [dict(part) for part in copied["content"]]
    return copied


async def stream_events(
    call: ResponsesCall, chunks: AsyncIterator[dict[str, Any]], model: str
) -> AsyncIterator[dict[str, Any]]:
    """Responses events for a stream of OpenAI chunks; a failure after the start is one final `error` event."""
    state = _Events(call, model)
    for event in state.start():
        yield event
    try:
        async for kind, value in deltas(chunks):
            if kind == "text":
                for event in state.text(value):
                    yield event
            elif kind == "tool":
                for event in state.tool_call(value):
                    yield event
            elif kind == "finish":
                state.finish_reason = value
            else:
                state.usage = value
    except GatewayError as exc:
        yield state.event("error", code=exc.code or exc.error_type, message=exc.message, param=exc.param)
        return
    except Exception:
        log.exception("responses stream failed")
        yield state.event("error", code="api_error", message="internal gateway error while streaming", param=None)
        return
    for event in state.finish():
        yield event
