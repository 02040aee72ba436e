"""OpenAI-compatible routes: chat completions, completions, embeddings, models.

All three model routes go through the one pipeline (audited, metered and charged alike); they
differ only in the request kind they build and the body they return.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from proxy.http import openai_sse, sse_event
from proxy.schemas import chat_request, completion_request, embedding_request
from proxy.upstream import CHAT_PARAMS, COMPLETION_PARAMS, EMBEDDING_PARAMS

from .common import admitted_body, gateway_of, run_pipeline

router = APIRouter()

_JSON = "application/json"


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    admission, body = await admitted_body(request)
    chat = chat_request(body, CHAT_PARAMS, request.headers.get("x-task-type"))
    ctx = gateway_of(request).context(request, admission, "chat", body["model"], chat)
    result, headers = await run_pipeline(request, admission, ctx)
    if result.stream is not None:
        headers["cache-control"] = "no-cache"
        return StreamingResponse(openai_sse(result.stream, chat.include_usage), media_type="text/event-stream",
                                 headers=headers)
    assert result.response is not None
    return Response(json.dumps(result.response.body), media_type=_JSON, headers=headers)


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    admission, body = await admitted_body(request)
    call = completion_request(body, COMPLETION_PARAMS, request.headers.get("x-task-type"))
    ctx = gateway_of(request).context(request, admission, "completions", body["model"], call)
    result, headers = await run_pipeline(request, admission, ctx)
    assert result.response is not None
    answer = result.response.body
    if call.stream:
        return StreamingResponse(_completion_sse(answer), media_type="text/event-stream", headers=headers)
    return Response(json.dumps(answer), media_type=_JSON, headers=headers)


async def _completion_sse(answer: dict[str, Any]) -> AsyncIterator[bytes]:
    """Text completions are served whole upstream and replayed as one SSE chunk (plus [DONE])."""
    yield sse_event({**answer, "object": "text_completion"})
    yield b"data: [DONE]\n\n"


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    admission, body = await admitted_body(request)
    call = embedding_request(body, EMBEDDING_PARAMS)
    ctx = gateway_of(request).context(request, admission, "embeddings", body["model"], call)
    result, headers = await run_pipeline(request, admission, ctx)
    assert result.response is not None
    return Response(json.dumps(result.response.body), media_type=_JSON, headers=headers)


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    gw = gateway_of(request)
    await gw.admit(request)
    created = int(gw.started_at)
    data = [{"id": name, "object": "model", "created": created, "owned_by": "llm-gateway"}
            for name in gw.catalog.listing()]
    return Response(json.dumps({"object": "list", "data": data}), media_type=_JSON)
