"""Ollama's native API: /api/chat, /api/generate, /api/embed(dings), /api/tags, /api/show.

Ollama streams by default (``stream`` absent means true) as NDJSON: one JSON object per line,
``done: false`` pieces and a final ``done: true`` line with ``done_reason``, token counts and
durations in nanoseconds. Tool calls come whole in ``message.tool_calls`` with ``arguments``
as an object. Errors are ``{"error": "message"}``. This is what litellm's ``ollama`` and
``ollama_chat`` providers parse (``litellm/llms/ollama/``).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fake_upstream.common import (
    Call,
    begin,
    inputs_prompt,
    json_response,
    messages_prompt,
    ndjson,
    paced,
    split_chunks,
)
from fake_upstream.openai_api import embedding_inputs, embedding_vector
from fake_upstream.state import FakeState

VERSION = "0.9.0"
MALFORMED_LINE = b'{"model": "fake", "message": {"role": "assistant", "content": "not valid JSON\n'
NDJSON = "application/x-ndjson"


def error_shape(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


def _state(request: Request) -> FakeState:
    state: FakeState = request.app.state.fake
    return state


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _done_reason(call: Call) -> str:
    reason = call.behaviour.finish_reason
    return "stop" if reason in (None, "stop", "tool_calls") else reason


def _final_fields(call: Call, prompt: int, completion: int, started: float) -> dict[str, Any]:
    total = int((time.perf_counter() - started) * 1e9)
    return {
        "done": True,
        "done_reason": _done_reason(call),
        "total_duration": total,
        "load_duration": 1000,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": total // 4,
        "eval_count": completion,
        "eval_duration": total // 2,
    }


def _chat_prompt(body: dict[str, Any]) -> tuple[str, int]:
    return messages_prompt(body.get("messages"))


def _generate_prompt(body: dict[str, Any]) -> tuple[str, int]:
    last, count = inputs_prompt(body.get("prompt"))
    system = body.get("system")
    return last, count + (len(system.split()) if isinstance(system, str) else 0)


async def chat(request: Request) -> Response:
    started = time.perf_counter()
    call = await begin(request, _state(request), error_shape, _chat_prompt, stream_default=True)
    if isinstance(call, Response):
        return call
    text = call.text()
    prompt, completion = call.usage(text)
    tool_calls = [{"function": {"name": tc.name, "arguments": tc.arguments}} for tc in call.behaviour.tool_calls]
    model = call.model
    if not call.body.get("stream", True):
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return json_response(
            {
                "model": model,
                "created_at": _now(),
                "message": message,
                **_final_fields(call, prompt, completion, started),
            },
            headers=call.headers,
        )
    created = _now()
    body = [
        ndjson(
            {
                "model": model,
                "created_at": created,
                "message": {"role": "assistant", "content": piece},
                "done": False,
            }
        )
        for piece in split_chunks(text, call.behaviour.chunk_words)
    ]
    if tool_calls:
        msg = {"role": "assistant", "content": "", "tool_calls": tool_calls}
        body.append(ndjson({"model": model, "created_at": created, "message": msg, "done": False}))

    async def frames() -> Any:
        async for frame in paced(call, [], body, [], MALFORMED_LINE):
            yield frame
        final = {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""}}
        yield ndjson({**final, **_final_fields(call, prompt, completion, started)})

    return StreamingResponse(frames(), headers=call.headers, media_type=NDJSON)


async def generate(request: Request) -> Response:
    started = time.perf_counter()
    call = await begin(request, _state(request), error_shape, _generate_prompt, stream_default=True)
    if isinstance(call, Response):
        return call
    text = call.text()
    if not text and call.behaviour.tool_calls:
        # /api/generate has no tool calls: models answer a JSON object, which litellm's
        # `ollama` provider turns into a tool call when it sent `format: json`.
        first = call.behaviour.tool_calls[0]
        text = json.dumps({"name": first.name, "arguments": first.arguments})
    prompt, completion = call.usage(text)
    model = call.model
    if not call.body.get("stream", True):
        return json_response(
            {
                "model": model,
                "created_at": _now(),
                "response": text,
                "context": [1, 2, 3],
                **_final_fields(call, prompt, completion, started),
            },
            headers=call.headers,
        )
    created = _now()
    body = [
        ndjson({"model": model, "created_at": created, "response": piece, "done": False})
        for piece in split_chunks(text, call.behaviour.chunk_words)
    ]

    async def frames() -> Any:
        async for frame in paced(call, [], body, [], MALFORMED_LINE):
            yield frame
        final = {"model": model, "created_at": _now(), "response": "", "context": [1, 2, 3]}
        yield ndjson({**final, **_final_fields(call, prompt, completion, started)})

    return StreamingResponse(frames(), headers=call.headers, media_type=NDJSON)


async def embed(request: Request) -> Response:
    """``/api/embed`` (``input``: string or list) -> ``{"embeddings": [[...]]}``."""
    started = time.perf_counter()
    call = await begin(request, _state(request), error_shape, lambda b: inputs_prompt(b.get("input")))
    if isinstance(call, Response):
        return call
    dim = call.body.get("dimensions") or call.behaviour.embedding_dim
    vectors = [embedding_vector(t, dim) for t in embedding_inputs(call.body.get("input"))]
    prompt, _ = call.usage("")
    return json_response(
        {
            "model": call.model,
            "embeddings": vectors,
            "total_duration": int((time.perf_counter() - started) * 1e9),
            "load_duration": 1000,
            "prompt_eval_count": prompt,
        },
        headers=call.headers,
    )


async def embeddings_legacy(request: Request) -> Response:
    """``/api/embeddings`` (``prompt``: string) -> ``{"embedding": [...]}``."""
    call = await begin(request, _state(request), error_shape, lambda b: inputs_prompt(b.get("prompt")))
    if isinstance(call, Response):
        return call
    prompt = call.body.get("prompt")
    vector = embedding_vector(prompt if isinstance(prompt, str) else str(prompt), call.behaviour.embedding_dim)
    return json_response({"embedding": vector}, headers=call.headers)


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "fake",
        "families": ["fake"],
        "parameter_size": "7B",
        "quantization_level": "Q4_K_M",
    }


async def tags(request: Request) -> Response:
    models = [
        {
            "name": name,
            "model": name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 4_000_000_000,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": _details(),
        }
        for name in _state(request).model_names()
    ]
    return json_response({"models": models})


async def show(request: Request) -> Response:
    """Model info as litellm's ``OllamaModelInfo`` reads it (context length, tool support)."""
    return json_response(
        {
            "modelfile": "",
            "parameters": "",
            "template": "{{ if .Tools }}tools{{ end }}{{ .Prompt }}",
            "details": _details(),
            "model_info": {"general.architecture": "fake", "fake.context_length": 32768},
            "capabilities": ["completion", "tools"],
        }
    )


async def version(request: Request) -> Response:
    return json_response({"version": VERSION})
