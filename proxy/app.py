"""`create_app(settings)`: the app factory. Everything stateful is built in the lifespan.

Building in the lifespan (not at import, not in the factory) matters twice over: litellm's Rust
core does not survive `fork()`, so each uvicorn worker must build its own Router after it
starts; and two apps in one process (tests) get two independent object graphs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from core.errors import GatewayError, InvalidRequest, NotFound

from . import __version__, ui
from .http import GatewayHeaders
from .metrics import GatewayMetrics
from .routes import health, legacy, messages, metrics_route, openai, responses, review
from .services import Gateway
from .settings import Settings
from .shutdown import Drain, DrainScope

log = logging.getLogger("gateway")


def error_response(request: Request, exc: GatewayError) -> JSONResponse:
    headers = dict(exc.headers)  # includes the caller's x-ratelimit-* (routes/common.py)
    body = exc.to_anthropic_body() if request.url.path.startswith("/v1/messages") else exc.to_body()
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def create_app(settings: Settings) -> FastAPI:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    drain = Drain()  # graceful shutdown (proxy/shutdown.py): readiness off on SIGTERM, streams end cleanly

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = Gateway.build(settings, metrics)
        app.state.gateway = gateway
        await gateway.start()
        drain.attach(gateway)  # shutdown: the signal handler turns this gateway's readiness off
        log.info("gateway ready: config %s, model groups %s", settings.version, sorted(gateway.upstream.groups))
        try:
            yield
        finally:
            await gateway.stop()

    servers = [{"url": settings.public_url}] if settings.public_url else None
    app = FastAPI(title="llm-gateway", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  servers=servers)
    app.state.drain = drain  # shutdown: found here by GracefulServer / adopt_running_server
    app.include_router(openai.router)
    app.include_router(legacy.router)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    if settings.console.enabled:
        ui.install(app)  # before review.router: /v1/review/demonstrations is not a review item id
    app.include_router(review.router)
    app.include_router(responses.router)
    app.include_router(messages.router)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(request, InvalidRequest(f"invalid value for '{loc}': {first.get('msg')}", param=loc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(request, NotFound(f"no route {request.method} {request.url.path}"))
        error = GatewayError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
        return error_response(request, error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, GatewayError("internal gateway error; the request id identifies it in the logs"))

    Instrumentator(registry=registry, excluded_handlers=["/metrics", "/v1/metrics", "/health.*"]).instrument(app)
    app.add_middleware(GatewayHeaders, observe_overhead=metrics.observe_overhead)
    app.add_middleware(DrainScope, drain=drain)  # shutdown: stream generators see the drain (until_shutdown)
    return app
