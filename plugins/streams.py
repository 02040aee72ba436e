"""Streams <-> whole answers: accumulate OpenAI chunks into a `ChatResponse`, and replay one as chunks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from core.types import ChatResponse

REPLAY_PIECE = 64  # characters per replayed content delta: small enough to look like a stream


class Accumulator:
    """Collects chunk dicts as they pass; `response()` gives the answer they add up to."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.id = ""
        self.model = ""
        self.created = 0
        self.first_at: float | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.id = chunk.get("id", "")
            self.model = chunk.get("model", "")
            self.created = chunk.get("created", 0)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                if function.get("name"):
                    slot["function"]["name"] = function["name"]
                if function.get("arguments"):
                    slot["function"]["arguments"] += function["arguments"]
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def response(self, served_model: str = "") -> ChatResponse:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text)}
        tool_calls = [self.calls[i] for i in sorted(self.calls)]
        if tool_calls:
            message["tool_calls"] = tool_calls
        body = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model or served_model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }
        return ChatResponse.from_openai(body)


async def replay(response: ChatResponse) -> AsyncIterator[dict[str, Any]]:
    """A whole answer as OpenAI `chat.completion.chunk`s (role, content pieces, tool calls, finish, usage)."""
    body = response.body
    base = {
        "id": body.get("id") or "chatcmpl-gateway",
        "object": "chat.completion.chunk",
        "created": body.get("created") or int(time.time()),
        "model": body.get("model") or response.model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    text = response.text
    for start in range(0, len(text), REPLAY_PIECE):
        yield chunk({"content": text[start : start + REPLAY_PIECE]})
    for index, call in enumerate(response.tool_calls):
        function = call.get("function") or {}
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.get("id"),
                        "type": "function",
                        "function": {"name": function.get("name"), "arguments": function.get("arguments") or ""},
                    }
                ]
            }
        )
    yield chunk({}, response.finish_reason or "stop")
    usage = body.get("usage")
    if usage:
        yield {**base, "choices": [], "usage": usage}
