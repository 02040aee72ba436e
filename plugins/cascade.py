"""The cascade: call a tier, score its answer, escalate to the next tier while the score is low.

Stops at an answer scoring at least the escalation threshold, at the top tier, or at the
request's budget (max escalations, deadline, cost); returns the best-scoring answer, and records
every step. A request that named a deployment (not a tier) is scored but never escalated.

Streaming: a tier that may still escalate is called without streaming, scored, and its answer is
replayed to the client as SSE; the last tier that can answer streams straight through and is
scored when the stream ends (`stream_mode: passthrough` streams every tier straight through).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from core.errors import GatewayError, RateLimited, UpstreamError
from core.records import CascadeStep
from core.types import ChatResponse

from .base import BasePlugin, CallContext, CallNext, CallResult
from .streams import Accumulator, replay
from .tasks import TaskType
from .validators import Scorer
from .validators.execution import run_prechecks

log = logging.getLogger("gateway.cascade")

# Below this much time left, do not start another tier: its answer could not arrive in time.
MIN_STEP_S = 1.0


@dataclass(frozen=True, slots=True)
class Policy:
    threshold: float
    max_escalations: int
    max_cost: float | None
    escalate_on_error: bool
    buffer_streams: bool


class Cascade(BasePlugin):
    name = "cascade"

    def __init__(self, tiers: list[str], task_types: dict[str, TaskType], default: Policy) -> None:
        self.tiers = tiers
        self.next_tier = {tier: tiers[i + 1] for i, tier in enumerate(tiers[:-1])}
        self.task_types = task_types
        self.default = default

    def policy(self, ctx: CallContext) -> Policy:
        task = self.task_types.get(ctx.request.task_type or "")
        if task is None or (task.escalation_threshold is None and task.max_escalations is None):
            return self.default
        return Policy(
            threshold=self.default.threshold if task.escalation_threshold is None else task.escalation_threshold,
            max_escalations=self.default.max_escalations if task.max_escalations is None else task.max_escalations,
            max_cost=self.default.max_cost,
            escalate_on_error=self.default.escalate_on_error,
            buffer_streams=self.default.buffer_streams,
        )

    def _can_escalate(self, ctx: CallContext, policy: Policy, escalations: int, spent: float) -> bool:
        return (
            ctx.tier in self.next_tier
            and escalations < policy.max_escalations
            and ctx.remaining() > MIN_STEP_S
            and (policy.max_cost is None or spent < policy.max_cost)
        )

    async def wrap_call(self, ctx: CallContext, call_next: CallNext) -> CallResult:
        if ctx.request.kind == "embedding":  # nothing to judge, nowhere to escalate
            return await call_next(ctx, stream=False)
        policy = self.policy(ctx)
        scorer = ctx.learned.scorer
        wants_stream = ctx.request.stream and ctx.request.kind == "chat"
        best: CallResult | None = None
        escalations = 0
        spent = 0.0
        try:
            while True:
                more = self._can_escalate(ctx, policy, escalations, spent)
                if wants_stream and (not more or not policy.buffer_streams):
                    return self._score_stream(ctx, await call_next(ctx, stream=True), scorer)
                started = time.perf_counter()
                try:
                    result = await call_next(ctx, stream=False)
                except (UpstreamError, RateLimited) as exc:
                    if not (policy.escalate_on_error and more):
                        if best is not None:
                            break
                        raise
                    self._step(ctx, None, None, started, error=exc)
                    ctx.tier = ctx.target = self.next_tier[ctx.tier or ""]
                    ctx.route_reason += f"; {type(exc).__name__} -> {ctx.tier}"
                    escalations += 1
                    continue
                assert result.response is not None
                # Checks that must not block the event loop (code execution) run first, off it.
                checks_ms = await run_prechecks(scorer.validators, ctx.request, result.response,
                                                deadline_s=ctx.remaining())
                scoring = scorer.score(ctx.request, result.response)
                result.confidence = scoring.confidence
                result.validator_scores = {r.name: r.score for r in scoring.results if not r.abstained}
                ctx.validator_results = scoring.results
                spent += result.served.cost
                self._step(ctx, result, scoring.confidence, started, checks_ms=checks_ms)
                if best is None or (result.confidence or 0) > (best.confidence or 0):
                    best = result
                # The budget counts what this answer cost too: judge it after paying.
                if scoring.confidence >= policy.threshold or not self._can_escalate(ctx, policy, escalations, spent):
                    break
                ctx.tier = ctx.target = self.next_tier[ctx.tier or ""]
                ctx.route_reason += f"; escalated to {ctx.tier} (confidence {scoring.confidence:.1f})"
                escalations += 1
        finally:
            ctx.escalations = escalations
        assert best is not None
        if wants_stream and best.response is not None:
            best.stream = replay(best.response)
        return best

    def _step(
        self,
        ctx: CallContext,
        result: CallResult | None,
        confidence: float | None,
        started: float,
        error: GatewayError | None = None,
        checks_ms: dict[str, float] | None = None,
    ) -> None:
        step = CascadeStep(tier=ctx.tier or ctx.target, model=result.served.model if result else None,
                           score=confidence, cost=result.served.cost if result else 0.0,
                           latency_ms=round((time.perf_counter() - started) * 1000, 1))
        if error is not None:
            step["error"] = type(error).__name__
        if checks_ms:
            step["checks_ms"] = checks_ms
        ctx.steps.append(step)

    def _score_stream(self, ctx: CallContext, result: CallResult, scorer: Scorer) -> CallResult:
        """Pass the stream through; when it ends, score what was sent and record the step."""
        assert result.stream is not None
        started = time.perf_counter()
        source = result.stream

        async def scored() -> AsyncIterator[dict[str, Any]]:
            acc = Accumulator()
            async for chunk in source:
                acc.add(chunk)
                yield chunk
            response: ChatResponse = acc.response(result.served.model)
            checks_ms = await run_prechecks(scorer.validators, ctx.request, response, deadline_s=ctx.remaining())
            scoring = scorer.score(ctx.request, response)
            result.response = response
            result.confidence = scoring.confidence
            result.validator_scores = {r.name: r.score for r in scoring.results if not r.abstained}
            ctx.validator_results = scoring.results
            self._step(ctx, result, scoring.confidence, started, checks_ms=checks_ms)

        result.stream = scored()
        return result
