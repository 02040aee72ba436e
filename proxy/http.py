"""HTTP plumbing shared by every route: the body reader, SSE framing and the header middleware."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import GatewayError, InvalidRequest, PayloadTooLarge

from .shutdown import until_shutdown

# Paths whose overhead is measured (a closed set: metric labels never come from the request).
API_ROUTES = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/completion",
                        "/v1/classify", "/v1/responses", "/v1/messages"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,80}")


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing more than `limit` bytes without reading past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is {declared} bytes; this gateway accepts at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over this gateway's limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def sse_event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


async def openai_sse(chunks: AsyncIterator[dict[str, Any]], include_usage: bool) -> AsyncIterator[bytes]:
    """OpenAI SSE framing. A failure after the first byte is one final error event, not [DONE].

    So is a shutdown: `until_shutdown` ends a stream still open near the drain bound with
    `ShuttingDown` (code `shutting_down`), see proxy/shutdown.py.
    """
    try:
        async for chunk in until_shutdown(chunks):
            if not include_usage and "usage" in chunk:
                if not chunk.get("choices"):
                    continue
                chunk.pop("usage")
            yield sse_event(chunk)
    except GatewayError as exc:
        yield sse_event(exc.to_body())
        return
    yield SSE_DONE


class GatewayHeaders:
    """Pure ASGI middleware: `x-request-id` and `x-gateway-overhead-ms` on every response.

    Overhead is wall time until the response starts minus the time the route spent waiting on
    the upstream (`scope["state"]["upstream_ms"]`, written by the route), so for a stream it is
    the gateway's share of the time to first byte.
    """

    def __init__(self, app: ASGIApp, observe_overhead: Callable[[str, float], None] | None = None) -> None:
        self.app = app
        self.observe_overhead = observe_overhead

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else f"req_{uuid.uuid4().hex}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["upstream_ms"] = 0.0

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                overhead = max((time.perf_counter() - started) * 1000 - state.get("upstream_ms", 0.0), 0.0)
                path = scope["path"]
                if self.observe_overhead is not None and path in API_ROUTES:
                    self.observe_overhead(path, overhead / 1000)
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-gateway-overhead-ms", f"{overhead:.2f}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
