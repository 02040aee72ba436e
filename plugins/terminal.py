"""The innermost step of the pipeline: one call to the upstream for `ctx.target`, as told.

The kind of call comes from the request (`chat`, `completion`, `embedding`); whether a chat
answer streams comes from the caller of this step (the cascade decides), never from flipping
the request. Completions and embeddings come back whole, as a `ChatResponse` whose `body` is
the OpenAI body to return.
"""

from __future__ import annotations

import time

from core.errors import GatewayError, UpstreamTimeout
from core.types import ChatResponse
from core.upstream import Upstream

from .base import CallContext, CallNext, CallResult


def upstream_call(upstream: Upstream) -> CallNext:
    async def call(ctx: CallContext, *, stream: bool) -> CallResult:
        timeout = ctx.remaining()
        if timeout <= 0:
            raise UpstreamTimeout("the request's deadline passed before the model could be called")
        request = ctx.request
        started = time.perf_counter()
        try:
            if request.kind == "completion":
                body, served = await upstream.text_completion(ctx.target, request.payload, request.params, timeout)
                result = CallResult(response=ChatResponse.from_completion(body), served=served)
            elif request.kind == "embedding":
                body, served = await upstream.embedding(ctx.target, request.payload, request.params,
                                                        request.encoding_format, timeout)
                result = CallResult(response=ChatResponse.from_embedding(body), served=served)
            elif stream:
                handle = await upstream.chat_stream(ctx.target, request, timeout)
                result = CallResult(stream=handle.chunks, served=handle.served)
            else:
                response, served = await upstream.chat(ctx.target, request, timeout)
                result = CallResult(response=response, served=served)
        except GatewayError as exc:
            ctx.attempts.extend(exc.attempts)
            raise
        finally:
            ctx.upstream_ms += (time.perf_counter() - started) * 1000
        ctx.attempts.extend(result.served.attempts)
        return result

    return call
