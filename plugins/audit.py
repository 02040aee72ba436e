"""The audit plugin: one AuditRecord per call, success or failure, handed to the sink.

It registers its finalizer first thing (`before_call`), so whatever happens after — a refused
task type, an upstream failure, a stream the client abandons — the call is recorded. The record
is built after the gate has spoken (finalizers run last-registered first) and only enqueued:
`AuditSink.submit` never waits on the database.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from core.errors import GatewayError
from core.records import AuditRecord

from .base import BasePlugin, CallContext, CallResult


class Sink(Protocol):
    def submit(self, record: AuditRecord) -> None: ...


def error_class(error: BaseException) -> str:
    if isinstance(error, GatewayError):
        return error.code or type(error).__name__
    return type(error).__name__


def record_for(ctx: CallContext, result: CallResult | None, error: BaseException | None) -> AuditRecord:
    response = result.response if result else None
    served = result.served if result else None
    output = None
    if response is not None:
        output = response.text
        if response.tool_calls:
            output += ("\n" if output else "") + json.dumps(response.tool_calls)
    # No verdict (nothing scored the answer, or a stream ended before it could be) is not approval.
    status = "error" if error is not None or result is None else (result.status or "unscored")
    return AuditRecord(
        request_id=ctx.request_id,
        caller=ctx.caller,
        route=ctx.route,
        task_type=ctx.request.task_type,
        requested_model=ctx.requested_model,
        tier=ctx.tier,
        served_model=served.model if served else None,
        provider=served.provider if served else None,
        deployment=served.deployment if served else None,
        attempts=[asdict(a) for a in ctx.attempts],  # type: ignore[misc]
        escalations=ctx.escalations,
        steps=list(ctx.steps),
        validator_scores=dict(result.validator_scores) if result else {},
        confidence=result.confidence if result else None,
        status=status,  # type: ignore[arg-type]
        latency_ms=round((time.perf_counter() - ctx.started) * 1000, 1),
        ttft_ms=round(ctx.first_byte_ms, 1) if ctx.first_byte_ms is not None else None,
        tokens_in=response.prompt_tokens if response else 0,
        tokens_out=response.completion_tokens if response else 0,
        cost=round(sum(step.get("cost") or 0.0 for step in ctx.steps) or (served.cost if served else 0.0), 8),
        learned_version=ctx.learned.version,
        error_class=error_class(error) if error is not None else None,
        session_id=ctx.session_id,
        prompt=ctx.request.prompt_text(("system", "developer", "user", "tool")),
        output=output,
        route_reason=ctx.route_reason,
        checks=[check_json(r) for r in ctx.validator_results],
        prompt_json=prompt_json(ctx),
    )


def check_json(result: Any) -> dict[str, Any]:
    """One validator's verdict as the audit stores it (the reviewer console shows it)."""
    out: dict[str, Any] = {"name": result.name, "score": result.score, "passed": result.passed,
                           "reason": result.reason, "abstained": result.abstained}
    if getattr(result, "evidence", ()):
        out["evidence"] = list(result.evidence)
    return out


def prompt_json(ctx: CallContext) -> dict[str, Any]:
    """The structured prompt (messages, tools): content, so the sink applies the content policy."""
    out: dict[str, Any] = {"messages": list(ctx.request.messages)}
    if ctx.request.tools:
        out["tools"] = list(ctx.request.tools)
    return out


class Audit(BasePlugin):
    """Hands each call's record to the sink (if auditing is on) and to observers (metrics)."""

    name = "audit"

    def __init__(self, sink: Sink | None, observers: Sequence[Callable[[AuditRecord], None]] = (),
                 spot_check_share: float = 0.0, rng: random.Random | None = None) -> None:
        self.sink = sink
        self.observers = tuple(observers)
        self.spot_check_share = spot_check_share
        self.rng = rng or random.Random()

    async def before_call(self, ctx: CallContext) -> None:
        ctx.defer(self._record)

    async def _record(self, ctx: CallContext, result: CallResult | None, error: BaseException | None) -> None:
        record = record_for(ctx, result, error)
        # A sample of what the gate let through goes to reviewers too: without it, nobody can
        # tell how often `approved` answers are actually right (the thresholds cycle needs it).
        if record.status in ("approved", "warning") and self.rng.random() < self.spot_check_share:
            record.spot_check = True
        if self.sink is not None:
            self.sink.submit(record)
        for observe in self.observers:
            observe(record)
