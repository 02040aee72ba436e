"""The fake upstream ASGI app: routes for the three dialects and the admin API.

OpenAI-style routes are matched by *suffix* (any POST path ending in ``/chat/completions``,
``/completions``, ``/embeddings``, ``/messages``; any GET ending in ``/models``) because
litellm providers build their URLs differently (``/v1/...``, ``/openai/v1/...``,
``/ai/v1/...``, no prefix at all). Ollama's ``/api/*`` and the admin ``/_fake/*`` routes are
matched exactly, before the suffix catch-all.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from fake_upstream import admin, anthropic_api, ollama_api, openai_api
from fake_upstream.behaviour import Script
from fake_upstream.common import TRANSPORT_KEY, json_response
from fake_upstream.state import FakeState


class FakeUpstreamApp(Starlette):
    """Starlette plus one thing: it exposes the server's transport so a behaviour can drop it.

    uvicorn's ``send`` callable is a bound method of its request/response cycle, which holds
    the connection's ``transport``; the app is called with it before any middleware wraps it.
    Under another ASGI server the key is simply absent (see ``common.DropConnection``).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                scope[TRANSPORT_KEY] = transport
        await super().__call__(scope, receive, send)


async def _dispatch(request: Request) -> Response:
    """Suffix routing for OpenAI- and Anthropic-shaped paths under any prefix."""
    path = request.url.path.rstrip("/")
    if request.method == "POST":
        if path.endswith("/chat/completions"):
            return await openai_api.chat_completions(request)
        if path.endswith("/completions"):
            return await openai_api.completions(request)
        if path.endswith("/embeddings"):
            return await openai_api.embeddings(request)
        if path.endswith("/messages"):
            return await anthropic_api.messages(request)
        if path.endswith("/messages/count_tokens"):
            return await anthropic_api.count_tokens(request)
    elif request.method == "GET":
        if path.endswith("/models"):
            return await openai_api.list_models(request)
        if "/models/" in path:
            return await openai_api.get_model(request, path.split("/models/", 1)[1])
    message = f"fake upstream: no route for {request.method} {request.url.path}"
    return json_response(openai_api.error_shape(404, message), 404)


def create_app(script: dict[str, Any] | Script | None = None, *, default_latency_ms: float = 0.0) -> Starlette:
    """Build the app. ``script`` is a parsed script file (see :mod:`fake_upstream.behaviour`).

    ``default_latency_ms`` applies to every behaviour that does not set ``latency_ms``.
    The state is at ``app.state.fake`` (a :class:`fake_upstream.state.FakeState`).
    """
    parsed = script if isinstance(script, Script) else Script.from_dict(script)
    routes = [
        # The hot paths first: route matching is a regex per route, in order.
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/api/chat", ollama_api.chat, methods=["POST"]),
        Route("/v1/messages", anthropic_api.messages, methods=["POST"]),
        Route("/health", admin.health, methods=["GET"]),
        Route("/_fake/requests", admin.get_requests, methods=["GET"]),
        Route("/_fake/requests", admin.delete_requests, methods=["DELETE"]),
        Route("/_fake/behaviour/{model:path}", admin.put_behaviour, methods=["PUT"]),
        Route("/_fake/behaviour/{model:path}", admin.delete_behaviour, methods=["DELETE"]),
        Route("/_fake/enqueue/{model:path}", admin.enqueue, methods=["POST"]),
        Route("/_fake/reset", admin.reset, methods=["POST"]),
        Route("/api/generate", ollama_api.generate, methods=["POST"]),
        Route("/api/embed", ollama_api.embed, methods=["POST"]),
        Route("/api/embeddings", ollama_api.embeddings_legacy, methods=["POST"]),
        Route("/api/tags", ollama_api.tags, methods=["GET"]),
        Route("/api/show", ollama_api.show, methods=["POST"]),
        Route("/api/version", ollama_api.version, methods=["GET"]),
        Route("/{path:path}", _dispatch, methods=["GET", "POST"]),
    ]
    app = FakeUpstreamApp(routes=routes)
    app.state.fake = FakeState(parsed, default_latency_ms=default_latency_ms)
    return app
