"""`POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic Messages (Claude Code).

The body is translated into a `ChatRequest` (proxy/protocols/anthropic.py) and runs through the
same pipeline as chat completions. Errors on these paths come out in Anthropic's shape
(`proxy/app.py` renders them for every path under `/v1/messages`), and a failure after a stream
has started is one final `event: error`. `anthropic-version` / `anthropic-beta` headers and the
SDK's `?beta=true` are accepted and need nothing from the gateway. Claude Code's
`x-claude-code-session-id` keys the session pin when the caller sends no `x-session-id`.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from proxy.protocols import anthropic as protocol
from proxy.protocols import framed
from proxy.shutdown import until_shutdown

from .common import admitted_body, gateway_of, run_pipeline

router = APIRouter()

_JSON = "application/json"


@router.post("/v1/messages")
async def create_message(request: Request) -> Response:
    admission, body = await admitted_body(request)
    call = protocol.to_chat(body, request.headers.get("x-task-type"))
    ctx = gateway_of(request).context(request, admission, "messages", call.model, call.chat)
    ctx.session_id = ctx.session_id or request.headers.get("x-claude-code-session-id")
    result, headers = await run_pipeline(request, admission, ctx)
    headers["request-id"] = ctx.request_id
    if call.warnings:
        headers["x-gateway-warning"] = "; ".join(call.warnings)
    model = result.served.model or call.model
    if result.stream is not None:
        headers["cache-control"] = "no-cache"
        events = protocol.stream_events(call, until_shutdown(result.stream), model)
        return StreamingResponse(framed(events), media_type="text/event-stream", headers=headers)
    assert result.response is not None
    return Response(json.dumps(protocol.message_object(result.response, model)), media_type=_JSON, headers=headers)


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    gw = gateway_of(request)
    admission, body = await admitted_body(request)
    call = protocol.to_chat(body)
    gw.catalog.resolve(call.model)  # an unknown model is a 404, as on /v1/messages
    answer = {"input_tokens": protocol.count_tokens(call.chat)}
    return Response(json.dumps(answer), media_type=_JSON, headers=admission.rate_headers)
