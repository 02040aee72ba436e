"""What the pipeline needs from a model provider: the `Upstream` Protocol and its value types.

`proxy.upstream.RouterUpstream` (litellm.Router) implements it for production; tests use the
in-process double in `tests/support/upstream_double.py`. Nothing here knows litellm or HTTP.

    chat(target, request, timeout)        -> (ChatResponse, Served)   one whole answer
    chat_stream(target, request, timeout) -> StreamHandle             first chunk already received
    text_completion(...) / embedding(...) -> (OpenAI body, Served)

A failure is a `GatewayError` (core.errors) whose `attempts` lists what was tried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .types import ChatRequest, ChatResponse


@dataclass(slots=True)
class Attempt:
    """One deployment tried for one request."""

    tier: str | None
    deployment: str | None
    provider: str | None
    outcome: str  # "ok", or the error class name
    latency_ms: float | None = None
    retry_after: float | None = None
    detail: str | None = None


@dataclass(slots=True)
class Served:
    """Where an answer came from, and what was tried before it."""

    model: str = ""
    deployment: str = ""
    provider: str = ""
    cost: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(slots=True)
class StreamHandle:
    """An open upstream stream whose first chunk has already arrived (so failover is over)."""

    chunks: AsyncIterator[dict[str, Any]]
    served: Served


class Upstream(Protocol):
    """The model-calling side of the gateway, as the pipeline and the routes see it."""

    forbidden: frozenset[str]
    groups: frozenset[str]

    async def chat(self, model: str, request: ChatRequest, timeout: float) -> tuple[ChatResponse, Served]: ...

    async def chat_stream(self, model: str, request: ChatRequest, timeout: float) -> StreamHandle: ...

    async def text_completion(self, model: str, prompt: Any, params: dict[str, Any],
                              timeout: float) -> tuple[dict[str, Any], Served]: ...

    async def embedding(self, model: str, inputs: Any, params: dict[str, Any], encoding_format: str,
                        timeout: float) -> tuple[dict[str, Any], Served]: ...

    async def earliest_cooldown_end(self, model: str) -> float | None: ...
