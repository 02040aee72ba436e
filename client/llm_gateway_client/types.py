"""Typed results. Every result says `mode` ("gateway" or "fallback") and `model` (who answered).

In fallback mode no gateway validated the answer: `status` and `confidence` are None, and `id`
is the local request id under which the call is kept and later uploaded to the gateway's audit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

Mode = Literal["gateway", "fallback"]


@dataclass(frozen=True, slots=True)
class CompletionResult:
    """`POST /v1/completion`: one task-typed answer."""

    id: str
    output: str
    model: str
    mode: Mode
    task_type: str
    status: str | None = None  # approved | warning | pending_review (gateway mode only)
    confidence: float | None = None  # 0-10 (gateway mode only)
    latency_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True, slots=True)
class ClassifyResult:
    """`POST /v1/classify`: the allowed label the model chose (None when its answer named none)."""

    id: str
    label: str | None
    model: str
    mode: Mode
    status: str | None = None
    confidence: float | None = None
    latency_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True, slots=True)
class ChatResult:
    """`POST /v1/chat/completions` (not streamed). `raw` is the OpenAI-shaped response body
    (built locally in fallback mode, so it has the same shape)."""

    id: str
    model: str
    mode: Mode
    content: str | None
    message: dict[str, Any]
    finish_reason: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    request_id: str | None = None  # the gateway's x-request-id (the local id in fallback mode)
    tier: str | None = None
    status: str | None = None
    confidence: float | None = None
    latency_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    raw: dict[str, Any] = field(default_factory=dict)


class Status(TypedDict):
    """`get_status()`: is the gateway healthy, is the local model up, where would a call go now."""

    gateway: bool
    ollama: Literal["up", "down", "unknown"]
    mode: Mode
