"""OpenAI-compatible routes: chat completions, completions, embeddings, models."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from plugins.base import CallContext, CallResult
from proxy.http import openai_sse, read_json, sse_event
from proxy.schemas import CompletionBody, EmbeddingBody, chat_request, validate
from proxy.services import Gateway
from proxy.upstream import CHAT_PARAMS, Served, check_forbidden

router = APIRouter()

_JSON = "application/json"


def gateway_headers(ctx: CallContext, result: CallResult) -> dict[str, str]:
    headers = {
        "x-gateway-tier": ctx.tier or ctx.target,
        "x-gateway-model": result.served.model,
        "x-gateway-route-reason": ctx.route_reason,
    }
    if result.status:
        headers["x-gateway-status"] = result.status
    if result.confidence is not None:
        headers["x-gateway-confidence"] = f"{result.confidence:.1f}"
    headers.update(ctx.response_headers)
    return headers


def _served_headers(request: Request, target: str, served: Served) -> dict[str, str]:
    headers = {"x-gateway-tier": target, "x-gateway-model": served.model}
    headers.update(getattr(request.state, "rate_headers", {}))
    return headers


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    caller = await gw.admit(request)
    body = await read_json(request, gw.settings.limits.max_body_bytes)
    if isinstance(body, dict):
        check_forbidden(body, gw.upstream.forbidden)
    chat = chat_request(body, CHAT_PARAMS, request.headers.get("x-task-type"))
    ctx = gw.context(request, caller, "chat", body["model"], chat)
    result = await gw.pipeline.run(ctx)
    request.state.upstream_ms = ctx.upstream_ms
    headers = gateway_headers(ctx, result)
    headers.update(getattr(request.state, "rate_headers", {}))
    if result.stream is not None:
        headers["cache-control"] = "no-cache"
        return StreamingResponse(openai_sse(result.stream, chat.include_usage), media_type="text/event-stream",
                                 headers=headers)
    assert result.response is not None
    return Response(json.dumps(result.response.body), media_type=_JSON, headers=headers)


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.admit(request)
    body = await read_json(request, gw.settings.limits.max_body_bytes)
    if isinstance(body, dict):
        check_forbidden(body, gw.upstream.forbidden)
    parsed: CompletionBody = validate(CompletionBody, body)
    target = _target(gw, parsed.model)
    started = time.perf_counter()
    answer, served = await gw.upstream.text_completion(target, parsed.prompt, body,
                                                       gw.settings.limits.request_timeout_s)
    request.state.upstream_ms = (time.perf_counter() - started) * 1000
    headers = _served_headers(request, target, served)
    if parsed.stream:
        return StreamingResponse(_completion_sse(answer), media_type="text/event-stream", headers=headers)
    return Response(json.dumps(answer), media_type=_JSON, headers=headers)


async def _completion_sse(answer: dict[str, Any]) -> Any:
    """Text completions are served whole upstream and replayed as one SSE chunk (plus [DONE])."""
    yield sse_event({**answer, "object": "text_completion"})
    yield b"data: [DONE]\n\n"


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.admit(request)
    body = await read_json(request, gw.settings.limits.max_body_bytes)
    if isinstance(body, dict):
        check_forbidden(body, gw.upstream.forbidden)
    parsed: EmbeddingBody = validate(EmbeddingBody, body)
    target = _target(gw, parsed.model, auto=gw.settings.embedding_group)
    started = time.perf_counter()
    answer, served = await gw.upstream.embedding(target, parsed.input, body, parsed.encoding_format,
                                                 gw.settings.limits.request_timeout_s)
    request.state.upstream_ms = (time.perf_counter() - started) * 1000
    return Response(json.dumps(answer), media_type=_JSON, headers=_served_headers(request, target, served))


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
