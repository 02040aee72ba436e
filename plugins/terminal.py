"""The innermost step of the pipeline: one call to the upstream adapter for `ctx.target`."""

from __future__ import annotations

import time

from core.errors import GatewayError, UpstreamTimeout
from core.upstream import Upstream

from .base import CallContext, CallNext, CallResult


def upstream_call(upstream: Upstream) -> CallNext:
    async def call(ctx: CallContext) -> CallResult:
        timeout = ctx.remaining()
        if timeout <= 0:
            raise UpstreamTimeout("the request's deadline passed before the model could be called")
        started = time.perf_counter()
        try:
            if ctx.request.stream:
                handle = await upstream.chat_stream(ctx.target, ctx.request, timeout)
                result = CallResult(stream=handle.chunks, served=handle.served)
            else:
                response, served = await upstream.chat(ctx.target, ctx.request, timeout)
                result = CallResult(response=response, served=served)
        except GatewayError as exc:
            ctx.attempts.extend(exc.attempts)
            raise
        finally:
            ctx.upstream_ms += (time.perf_counter() - started) * 1000
        ctx.attempts.extend(result.served.attempts)
        return result

    return call
