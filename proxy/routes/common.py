"""What every model route does before and after its own translation: one place, so it cannot drift.

    admitted_body(request)  -> caller, body     auth + limits, then the body (413/400), then the allowlist
    run_pipeline(request, ctx) -> result, headers   the pipeline, the upstream time for the overhead
                                                    header, and the x-gateway-* / x-ratelimit-* headers
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from plugins.base import CallContext, CallResult
from proxy.auth import Caller
from proxy.http import read_json
from proxy.services import Gateway
from proxy.upstream import Served, check_forbidden


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def admitted_body(request: Request) -> tuple[Caller, Any]:
    """The caller (401/429 before anything is read) and the JSON body, refused if it steers litellm."""
    gw = gateway_of(request)
    caller = await gw.admit(request)
    body = await read_json(request, gw.settings.limits.max_body_bytes)
    if isinstance(body, dict):
        check_forbidden(body, gw.upstream.forbidden)
    return caller, body


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


def rate_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = getattr(request.state, "rate_headers", {})
    return headers


async def run_pipeline(request: Request, ctx: CallContext) -> tuple[CallResult, dict[str, str]]:
    result = await gateway_of(request).pipeline.run(ctx)
    request.state.upstream_ms = ctx.upstream_ms
    headers = gateway_headers(ctx, result)
    headers.update(rate_headers(request))
    return result, headers


def served_headers(request: Request, target: str, served: Served) -> dict[str, str]:
    """Headers for the routes that bypass the pipeline (completions, embeddings)."""
    return {"x-gateway-tier": target, "x-gateway-model": served.model, **rate_headers(request)}
