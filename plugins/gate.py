"""The confidence gate: confidence -> approved / warning / pending_review, from the learned thresholds."""

from __future__ import annotations

from .base import BasePlugin, CallContext, CallResult
from .state import StateHolder


class Gate(BasePlugin):
    name = "gate"

    def __init__(self, state: StateHolder) -> None:
        self.state = state

    async def after_call(self, ctx: CallContext, result: CallResult) -> CallResult:
        thresholds = self.state.current.thresholds
        if result.confidence is not None:
            result.status = thresholds.verdict(result.confidence)
        elif result.stream is not None:
            # A stream passing straight through is scored when it ends; gate it then.
            async def gate_at_end(ctx: CallContext, final: CallResult | None, error: BaseException | None) -> None:
                if final is not None and final.confidence is not None:
                    final.status = thresholds.verdict(final.confidence)

            ctx.defer(gate_at_end)
        return result
