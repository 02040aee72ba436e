"""The plugin contract and the pipeline that runs it (GUIDE.md §4).

A plugin is a small object with three async hooks; the config lists plugins outermost first.
`before_call` hooks run in order, `wrap_call` hooks nest (the first wraps all the others, the
innermost calls the upstream), `after_call` hooks run in reverse order. The nesting is built
once in `Pipeline.__init__`, not per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.records import CascadeStep
from core.types import ChatRequest, ChatResponse
from core.upstream import Attempt, Served

from .state import Snapshot
from .validators.base import ValidatorResult

log = logging.getLogger("gateway.pipeline")


@dataclass(slots=True)
class CallContext:
    """Everything one request carries through the pipeline: typed fields, no bag of extras.

    Built by the gateway (`Gateway.context`) for every route. `learned` is the one learned-state
    snapshot this request is decided by (read once; the audit row records its version).
    """

    request_id: str
    caller: str
    route: str
    requested_model: str
    request: ChatRequest
    target: str  # the tier, model group or deployment the upstream call goes to
    deadline: float  # time.monotonic() by which everything must be done
    learned: Snapshot
    tier: str | None = None
    route_reason: str = "default"
    session_id: str | None = None
    # Set from the model name: `auto` (or an alias of it) lets tier selection pick the tier.
    auto: bool = False
    alias: str | None = None  # the alias the requested model name matched, if any
    limit_key: str = ""  # whose token budget the call's tokens are charged to
    # Written by the plugins, read by later ones and by the audit.
    task_reason: str | None = None  # why the task type is what it is, when it was inferred
    session_key: str | None = None  # the session pin's key, when pinning applies
    escalations: int = 0
    validator_results: tuple[ValidatorResult, ...] = ()
    response_headers: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    steps: list[CascadeStep] = field(default_factory=list)
    upstream_ms: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    first_byte_ms: float | None = None
    finalizers: list[Finalizer] = field(default_factory=list)

    def defer(self, finalizer: Finalizer) -> None:
        """Run `finalizer` when the call is over; finalizers run last-registered first."""
        self.finalizers.append(finalizer)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(slots=True)
class CallResult:
    """The answer: a whole `response`, or a `stream` of OpenAI chunk dicts (first chunk received)."""

    response: ChatResponse | None = None
    stream: AsyncIterator[dict[str, Any]] | None = None
    served: Served = field(default_factory=Served)
    confidence: float | None = None
    status: str | None = None
    validator_scores: dict[str, float] = field(default_factory=dict)


class CallNext(Protocol):
    """The rest of the pipeline. `stream` says whether the upstream answer should stream (the
    innermost step calls the upstream exactly as told; nothing flips the request to steer it)."""

    def __call__(self, ctx: CallContext, *, stream: bool) -> Awaitable[CallResult]: ...


# Must not wait on I/O. Runs once the call is over: after the answer for JSON, after the last chunk (or the failure,
# or the client going away) for a stream. `error` is None on success.
Finalizer = Callable[["CallContext", CallResult | None, BaseException | None], Awaitable[None]]


class Plugin(Protocol):
    name: str

    async def before_call(self, ctx: CallContext) -> None: ...

    async def wrap_call(self, ctx: CallContext, call_next: CallNext) -> CallResult: ...

    async def after_call(self, ctx: CallContext, result: CallResult) -> CallResult: ...


class BasePlugin:
    """Pass-through defaults, so a plugin only writes the hooks it needs."""

    name = "base"

    async def before_call(self, ctx: CallContext) -> None:
        return None

    async def wrap_call(self, ctx: CallContext, call_next: CallNext) -> CallResult:
        return await call_next(ctx, stream=ctx.request.stream)

    async def after_call(self, ctx: CallContext, result: CallResult) -> CallResult:
        return result


def _wrap(plugin: Plugin, inner: CallNext) -> CallNext:
    async def call(ctx: CallContext, *, stream: bool) -> CallResult:
        return await plugin.wrap_call(ctx, inner)

    return call


class Pipeline:
    def __init__(self, plugins: list[Plugin], terminal: CallNext) -> None:
        self.plugins = list(plugins)
        self._reversed = list(reversed(self.plugins))
        chain = terminal
        for plugin in self._reversed:
            if type(plugin).wrap_call is not BasePlugin.wrap_call:
                chain = _wrap(plugin, chain)
        self._chain = chain

    async def run(self, ctx: CallContext) -> CallResult:
        try:
            for plugin in self.plugins:
                await plugin.before_call(ctx)
            result = await self._chain(ctx, stream=ctx.request.stream)
            for plugin in self._reversed:
                result = await plugin.after_call(ctx, result)
        except BaseException as exc:
            await finalize(ctx, None, exc)
            raise
        if result.stream is not None:
            result.stream = _finalizing(ctx, result, result.stream)
        else:
            await finalize(ctx, result, None)
        return result


async def finalize(ctx: CallContext, result: CallResult | None, error: BaseException | None) -> None:
    while ctx.finalizers:
        finalizer = ctx.finalizers.pop()
        try:
            await finalizer(ctx, result, error)
        except Exception:
            log.exception("finalizer failed for %s", ctx.request_id)


class ClientDisconnected(Exception):
    """The client went away before the stream ended."""


async def _finalizing(
    ctx: CallContext, result: CallResult, stream: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    error: BaseException | None = None
    try:
        async for chunk in stream:
            if ctx.first_byte_ms is None:
                ctx.first_byte_ms = (time.perf_counter() - ctx.started) * 1000
            yield chunk
    except (GeneratorExit, asyncio.CancelledError):
        error = ClientDisconnected("the client disconnected before the stream ended")
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        # Under a cancelled scope every real suspension would raise again: finalizers must finish
        # without waiting on I/O (the audit sink's submit() only enqueues).
        await finalize(ctx, result, error)
