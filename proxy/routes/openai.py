"""OpenAI-compatible routes: chat completions, completions, embeddings, models."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from proxy.http import openai_sse, sse_event
from proxy.schemas import CompletionBody, EmbeddingBody, chat_request, validate
from proxy.services import Gateway
from proxy.upstream import CHAT_PARAMS

from .common import admitted_body, gateway_of, run_pipeline, served_headers

router = APIRouter()

_JSON = "application/json"


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    caller, body = await admitted_body(request)
    chat = chat_request(body, CHAT_PARAMS, request.headers.get("x-task-type"))
    ctx = gateway_of(request).context(request, caller, "chat", body["model"], chat)
    result, headers = await run_pipeline(request, ctx)
    if result.stream is not None:
        headers["cache-control"] = "no-cache"
        return StreamingResponse(openai_sse(result.stream, chat.include_usage), media_type="text/event-stream",
                                 headers=headers)
    assert result.response is not None
    return Response(json.dumps(result.response.body), media_type=_JSON, headers=headers)


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    gw = gateway_of(request)
    _, body = await admitted_body(request)
    parsed: CompletionBody = validate(CompletionBody, body)
    target = _target(gw, parsed.model)
    started = time.perf_counter()
    answer, served = await gw.upstream.text_completion(target, parsed.prompt, body,
                                                       gw.settings.limits.request_timeout_s)
    request.state.upstream_ms = (time.perf_counter() - started) * 1000
    headers = served_headers(request, target, served)
    if parsed.stream:
        return StreamingResponse(_completion_sse(answer), media_type="text/event-stream", headers=headers)
    return Response(json.dumps(answer), media_type=_JSON, headers=headers)


async def _completion_sse(answer: dict[str, Any]) -> Any:
    """Text completions are served whole upstream and replayed as one SSE chunk (plus [DONE])."""
    yield sse_event({**answer, "object": "text_completion"})
    yield b"data: [DONE]\n\n"


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    gw = gateway_of(request)
    _, body = await admitted_body(request)
    parsed: EmbeddingBody = validate(EmbeddingBody, body)
    target = _target(gw, parsed.model, auto=gw.settings.embedding_group)
    started = time.perf_counter()
    answer, served = await gw.upstream.embedding(target, parsed.input, body, parsed.encoding_format,
                                                 gw.settings.limits.request_timeout_s)
    request.state.upstream_ms = (time.perf_counter() - started) * 1000
    return Response(json.dumps(answer), media_type=_JSON, headers=served_headers(request, target, served))


def _target(gw: Gateway, requested: str, auto: str | None = None) -> str:
    resolved = gw.catalog.resolve(requested)
    if resolved.kind == "auto":
        return auto or gw.settings.default_tier
    return resolved.name


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.admit(request)
    created = int(gw.started_at)
    data = [{"id": name, "object": "model", "created": created, "owned_by": "llm-gateway"}
            for name in gw.catalog.listing()]
    return Response(json.dumps({"object": "list", "data": data}), media_type=_JSON)
