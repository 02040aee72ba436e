"""`POST /v1/responses`: OpenAI's Responses API (Codex), through the same pipeline as chat completions.

The body is translated into a `ChatRequest` (proxy/protocols/responses.py), so tier selection,
validators, the cascade, the gate and the audit all apply whatever provider serves the call.
Dropped, unsupported tools and input items are named in `x-gateway-warning`.

Codex's `session-id` header keys the session pin when the caller sends no `x-session-id`, so one
Codex conversation stays on its tier (without it, every session in one directory would share the
pin of its identical first messages). Like chat completions, a body carrying a litellm steering
key (`api_base`, `mock_response`, ...) is refused, although nothing from the raw body is
forwarded here: the translation builds every upstream parameter.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from proxy.protocols import framed
from proxy.protocols import responses as protocol
from proxy.shutdown import until_shutdown

from .common import admitted_body, gateway_of, run_pipeline

router = APIRouter()


@router.post("/v1/responses")
async def create_response(request: Request) -> Response:
    admission, body = await admitted_body(request)
    call = protocol.to_chat(body, request.headers.get("x-task-type"))
    ctx = gateway_of(request).context(request, admission, "responses", call.model, call.chat)
    ctx.session_id = ctx.session_id or request.headers.get("session-id")
    result, headers = await run_pipeline(request, admission, ctx)
    if call.warnings:
        headers["x-gateway-warning"] = "; ".join(call.warnings)
    model = result.served.model or call.model
    if result.stream is not None:
        headers["cache-control"] = "no-cache"
        events = protocol.stream_events(call, until_shutdown(result.stream), model)
        return StreamingResponse(framed(events), media_type="text/event-stream", headers=headers)
    assert result.response is not None
    answer = protocol.answer_object(call, result.response, model)
    return Response(json.dumps(answer), media_type="application/json", headers=headers)
