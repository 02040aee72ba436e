"""The confidence gate: confidence -> approved / warning / pending_review, from the learned thresholds.

The thresholds are the request's own learned snapshot (`ctx.learned`). A stream passing
straight through is scored when it ends, so its verdict is given then (a finalizer). An answer
nothing scored gets no verdict here, and the audit records it `unscored`, never `approved`.
"""

from __future__ import annotations

from .base import BasePlugin, CallContext, CallResult


class Gate(BasePlugin):
    name = "gate"

    async def after_call(self, ctx: CallContext, result: CallResult) -> CallResult:
        thresholds = ctx.learned.thresholds
        if result.confidence is not None:
            result.status = thresholds.verdict(result.confidence)
        elif result.stream is not None:
            async def gate_at_end(ctx: CallContext, final: CallResult | None, error: BaseException | None) -> None:
                if final is not None and final.confidence is not None:
                    final.status = thresholds.verdict(final.confidence)

            ctx.defer(gate_at_end)
        return result
