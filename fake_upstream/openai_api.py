"""OpenAI dialect: chat completions, legacy completions, embeddings, models.

Responses carry ``service_tier`` and ``system_fingerprint`` because some litellm providers
(Groq) read them, and ``usage`` always. Streams are SSE ``chat.completion.chunk`` /
``text_completion`` chunks ending in ``data: [DONE]``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fake_upstream.common import (
    Call,
    begin,
    inputs_prompt,
    json_response,
    messages_prompt,
    new_id,
    paced,
    split_chunks,
    split_in_two,
    sse,
)
from fake_upstream.state import FakeState

SERVICE_TIER = "on_demand"
FINGERPRINT = "fp_fake_upstream"
DONE = b"data: [DONE]\n\n"
MALFORMED_SSE = b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": "not valid JSON\n\n'

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout_error", None),
    409: ("conflict_error", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def error_shape(status: int, message: str) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _state(request: Request) -> FakeState:
    state: FakeState = request.app.state.fake
    return state


def _chat_prompt(body: dict[str, Any]) -> tuple[str, int]:
    return messages_prompt(body.get("messages"))


def _completion_prompt(body: dict[str, Any]) -> tuple[str, int]:
    return inputs_prompt(body.get("prompt"))


def _embedding_prompt(body: dict[str, Any]) -> tuple[str, int]:
    return inputs_prompt(body.get("input"))


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _finish_reason(call: Call) -> str:
    b = call.behaviour
    return b.finish_reason or ("tool_calls" if b.tool_calls else "stop")


# --- chat completions ---------------------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    call = await begin(request, _state(request), error_shape, _chat_prompt)
    if isinstance(call, Response):
        return call
    text = call.text()
    prompt, completion = call.usage(text)
    tool_calls = [
        {
            "id": tc.id or new_id("call_"),
            "type": "function",
            "function": {"name": tc.name, "arguments": tc.arguments_json},
        }
        for tc in call.behaviour.tool_calls
    ]
    if call.body.get("stream"):
        return _chat_stream(call, text, tool_calls, prompt, completion)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or (None if tool_calls else ""),
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return json_response(
        {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(call)}],
            "usage": _usage(prompt, completion),
            "service_tier": SERVICE_TIER,
            "system_fingerprint": FINGERPRINT,
        },
        headers=call.headers,
    )


def _chat_stream(call: Call, text: str, tool_calls: list[dict[str, Any]], prompt: int, completion: int) -> Response:
    base = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": call.model,
        "service_tier": SERVICE_TIER,
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    head = [chunk({"role": "assistant", "content": ""})]
    body = [chunk({"content": piece}) for piece in split_chunks(text, call.behaviour.chunk_words)]
    for index, tc in enumerate(tool_calls):
        fn = tc["function"]
        start = {
            "index": index,
            "id": tc["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        body.append(chunk({"tool_calls": [start]}))
        for part in split_in_two(fn["arguments"]):
            body.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]}))
    tail = [chunk({}, _finish_reason(call))]
    if _include_usage(call.body):
        tail.append(sse({**base, "choices": [], "usage": _usage(prompt, completion)}))
    tail.append(DONE)
    return StreamingResponse(
        paced(call, head, body, tail, MALFORMED_SSE), headers=call.headers, media_type="text/event-stream"
    )


# --- legacy completions -------------------------------------------------------------------------


async def completions(request: Request) -> Response:
    call = await begin(request, _state(request), error_shape, _completion_prompt)
    if isinstance(call, Response):
        return call
    text = call.text()
    prompt, completion = call.usage(text)
    finish = call.behaviour.finish_reason or "stop"
    base = {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": call.model,
    }
    if call.body.get("stream"):

        def chunk(piece: str, finish_reason: str | None = None) -> bytes:
            choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish_reason}
            return sse({**base, "choices": [choice], "system_fingerprint": FINGERPRINT})

        body = [chunk(piece) for piece in split_chunks(text, call.behaviour.chunk_words)]
        tail = [chunk("", finish)]
        if _include_usage(call.body):
            tail.append(sse({**base, "choices": [], "usage": _usage(prompt, completion)}))
        tail.append(DONE)
        return StreamingResponse(
            paced(call, [], body, tail, MALFORMED_SSE), headers=call.headers, media_type="text/event-stream"
        )
    return json_response(
        {
            **base,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
            "usage": _usage(prompt, completion),
            "system_fingerprint": FINGERPRINT,
        },
        headers=call.headers,
    )


# --- embeddings ---------------------------------------------------------------------------------


def embedding_vector(text: str, dim: int) -> list[float]:
    """A deterministic, unit-length, float32-exact pseudo-random vector for ``text``."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    vec = [rng.uniform(-1.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in vec)) or 1.0
    return list(struct.unpack(f"<{dim}f", struct.pack(f"<{dim}f", *(x / norm for x in vec))))


def embedding_inputs(value: Any) -> list[str]:
    """Embedding inputs as strings: a string, a list of strings, or token-id lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return [str(value)]
        return [v if isinstance(v, str) else str(v) for v in value]
    return [str(value)]


async def embeddings(request: Request) -> Response:
    call = await begin(request, _state(request), error_shape, _embedding_prompt)
    if isinstance(call, Response):
        return call
    dim = call.body.get("dimensions") or call.behaviour.embedding_dim
    as_base64 = call.body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(embedding_inputs(call.body.get("input"))):
        vec: Any = embedding_vector(text, dim)
        if as_base64:
            vec = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vec})
    prompt, _ = call.usage("")
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        },
        headers=call.headers,
    )


# --- models -------------------------------------------------------------------------------------


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "fake-upstream"}


async def list_models(request: Request) -> Response:
    return json_response({"object": "list", "data": [_model_obj(m) for m in _state(request).model_names()]})


async def get_model(request: Request, name: str) -> Response:
    return json_response(_model_obj(name))
