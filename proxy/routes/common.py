"""What every model route does before and after its own translation: one place, so it cannot drift.

    admitted_body(request)              -> admission, body    auth + limits, then the body (413/400),
                                                               then the allowlist
    run_pipeline(request, admission, ctx) -> result, headers  the pipeline, the upstream time for the
                                                               overhead header, x-gateway-* / x-ratelimit-*

An error raised after admission carries the caller's x-ratelimit-* headers too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request

from core.errors import GatewayError
from plugins.base import CallContext, CallResult
from proxy.auth import require_model_caller
from proxy.http import read_json
from proxy.services import Admission, Gateway
from proxy.upstream import check_forbidden


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@contextmanager
def with_rate_headers(admission: Admission) -> Iterator[None]:
    """Errors raised inside still tell the caller where it stands against its limits."""
    try:
        yield
    except GatewayError as exc:
        for name, value in admission.rate_headers.items():
            exc.headers.setdefault(name, value)
        raise


async def admitted_body(request: Request) -> tuple[Admission, Any]:
    """The caller (401/429 before anything is read) and the JSON body, refused if it steers litellm."""
    gw = gateway_of(request)
    admission = await gw.admit(request)
    require_model_caller(admission.caller)
    with with_rate_headers(admission):
        body = await read_json(request, gw.settings.limits.max_body_bytes)
        if isinstance(body, dict):
            check_forbidden(body, gw.upstream.forbidden)
    return admission, body


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


async def run_pipeline(request: Request, admission: Admission, ctx: CallContext) -> tuple[CallResult, dict[str, str]]:
    try:
        with with_rate_headers(admission):
            result = await gateway_of(request).pipeline.run(ctx)
    finally:
        # The overhead header (proxy.http.GatewayHeaders) subtracts the time spent waiting upstream.
        request.state.upstream_ms = ctx.upstream_ms
    headers = gateway_headers(ctx, result)
    headers.update(admission.rate_headers)
    return result, headers
