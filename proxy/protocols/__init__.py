"""Wire protocols other than OpenAI chat: pure translation to and from the pipeline's types.

`responses` speaks OpenAI's Responses API (Codex), `anthropic` speaks Anthropic Messages (Claude
Code). Each turns a request body into one `ChatRequest`, a `ChatResponse` into its answer object,
and a stream of OpenAI `chat.completion.chunk` dicts into its own event stream. Nothing here knows
FastAPI or the pipeline: the routes in `proxy/routes/` do the HTTP and call these functions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

_HEADER_SAFE = re.compile(r"[^A-Za-z0-9_.:\-]")


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def named_sse(event: dict[str, Any]) -> bytes:
    """One SSE event whose `event:` line is the payload's `type` (Responses and Anthropic framing)."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


async def framed(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for event in events:
        yield named_sse(event)


async def deltas(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[tuple[str, Any]]:
    """What a stream of OpenAI chunks says, in order, for the first choice:
    ("text", str), ("tool", tool-call delta), ("finish", reason), ("usage", usage dict).

    Both protocols' event streams are built from this, so the chunk format is read in one place.
    """
    async for chunk in chunks:
        if chunk.get("usage"):
            yield "usage", chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield "text", delta["content"]
            for piece in delta.get("tool_calls") or ():
                yield "tool", piece
            if choice.get("finish_reason"):
                yield "finish", choice["finish_reason"]


def warning(label: str, names: Iterable[str]) -> str | None:
    """`dropped unsupported tools: web_search, mcp` for the `x-gateway-warning` header, or None.

    The names come from the request body, so they are reduced to header-safe characters.
    """
    seen: list[str] = []
    for name in names:
        clean = _HEADER_SAFE.sub("", str(name))[:40] or "unknown"
        if clean not in seen:
            seen.append(clean)
    if not seen:
        return None
    shown = ", ".join(seen[:20]) + (", ..." if len(seen) > 20 else "")
    return f"dropped unsupported {label}: {shown}"


def text_of_parts(parts: list[dict[str, Any]]) -> str:
    """The text of OpenAI `{"type": "text"}` parts, one per line."""
    return "\n".join(str(p.get("text") or "") for p in parts if p.get("type") == "text")


def collapse(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """OpenAI content from parts: a plain string when every part is text (what most providers expect)."""
    if all(p.get("type") == "text" for p in parts):
        return text_of_parts(parts)
    return parts


def settle_trailing_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Move system messages that come after the last turn to just before it.

    Claude Code appends environment notes as a `system` message after the user's turn; several
    providers (Mistral, among the external chain) refuse a conversation whose last message is a
    system message. The note keeps its content and stays next to the turn it belongs to.
    """
    trailing = 0
    while trailing < len(messages) and messages[-1 - trailing].get("role") == "system":
        trailing += 1
    if trailing == 0 or trailing == len(messages):
        return messages
    last_turn = len(messages) - trailing - 1
    return [*messages[:last_turn], *messages[last_turn + 1 :], messages[last_turn]]
