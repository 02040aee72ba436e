"""Anthropic Messages dialect: ``POST /v1/messages`` (JSON and SSE) and ``count_tokens``.

The stream follows Anthropic's event order: ``message_start``, ``ping``, per content block
``content_block_start`` / ``content_block_delta`` (``text_delta`` or ``input_json_delta``) /
``content_block_stop``, then ``message_delta`` (stop_reason, usage) and ``message_stop``.
Block start/stop events ride along with the next counted chunk so that
``stall_after_chunks`` counts deltas only.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fake_upstream.common import (
    Call,
    begin,
    json_response,
    messages_prompt,
    new_id,
    paced,
    split_chunks,
    split_in_two,
    sse,
    text_of,
)
from fake_upstream.state import FakeState, RecordedRequest

MALFORMED_EVENT = b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"text": "no JSON\n\n'

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def error_shape(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req_")}


def _state(request: Request) -> FakeState:
    state: FakeState = request.app.state.fake
    return state


def _prompt(body: dict[str, Any]) -> tuple[str, int]:
    return messages_prompt(body.get("messages"), text_of(body.get("system")))


def _stop_reason(call: Call) -> str:
    b = call.behaviour
    reason = b.finish_reason or ("tool_calls" if b.tool_calls else "stop")
    return _STOP_REASONS.get(reason, reason)


async def messages(request: Request) -> Response:
    call = await begin(request, _state(request), error_shape, _prompt)
    if isinstance(call, Response):
        return call
    text = call.text()
    prompt, completion = call.usage(text)
    tools = [(tc.id or new_id("toolu_"), tc) for tc in call.behaviour.tool_calls]
    message_id = new_id("msg_")
    if call.body.get("stream"):
        return _stream(call, message_id, text, tools, prompt, completion)
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": tid, "name": tc.name, "input": tc.arguments} for tid, tc in tools]
    return json_response(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": content,
            "stop_reason": _stop_reason(call),
            "stop_sequence": None,
            "usage": _usage(prompt, completion),
        },
        headers=call.headers,
    )


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "input_tokens": prompt,
        "output_tokens": completion,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _stream(call: Call, message_id: str, text: str, tools: list[Any], prompt: int, completion: int) -> Response:
    start: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**_usage(prompt, 1)},
    }
    head = [sse({"type": "message_start", "message": start}, "message_start"), sse({"type": "ping"}, "ping")]
    body: list[bytes] = []
    pending = b""
    index = 0
    if text:
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        head.append(sse(block, "content_block_start"))
        for piece in split_chunks(text, call.behaviour.chunk_words):
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            body.append(sse(delta, "content_block_delta"))
        pending = sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        index = 1
    for tid, tc in tools:
        block = {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": tid, "name": tc.name, "input": {}},
        }
        pending += sse(block, "content_block_start")
        for part in split_in_two(json.dumps(tc.arguments)):
            delta = {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": part},
            }
            body.append(pending + sse(delta, "content_block_delta"))
            pending = b""
        pending = sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        index += 1
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(call), "stop_sequence": None},
        "usage": {"output_tokens": completion},
    }
    tail = [pending + sse(end, "message_delta") + sse({"type": "message_stop"}, "message_stop")]
    return StreamingResponse(
        paced(call, head, body, tail, MALFORMED_EVENT), headers=call.headers, media_type="text/event-stream"
    )


async def count_tokens(request: Request) -> Response:
    """``/v1/messages/count_tokens``: a rough word count; recorded, consumes no behaviour."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return json_response(error_shape(400, "fake upstream: request body is not JSON"), 400)
    state = _state(request)
    model = body.get("model") if isinstance(body, dict) else None
    state.record(RecordedRequest(request.method, request.url.path, model, body, dict(request.headers), time.time()))
    _, count = _prompt(body if isinstance(body, dict) else {})
    return json_response({"input_tokens": max(1, count)})
