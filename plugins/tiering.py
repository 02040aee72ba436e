"""Tier selection: `auto` -> task type -> tier, with session pinning and an exploration share.

The task type comes from the caller (legacy body field, `x-task-type`, `metadata.task_type`) or
from the local classifier in `tasks.py`. The tier comes from the learned assignment table, falling
back to the task type's default. A conversation never goes down: once it has escalated to a tier,
it stays there for `session_pin_ttl_s`, so an agent does not bounce between models mid-task.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import OrderedDict
from typing import Protocol

from core.errors import InvalidRequest

from .base import BasePlugin, CallContext, CallResult
from .tasks import TaskType, infer_task_type


class PinStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, tier: str, ttl_s: float) -> None: ...


class LocalPins:
    """Session pins in this process (bounded LRU with expiry)."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._pins: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._capacity = capacity

    async def get(self, key: str) -> str | None:
        item = self._pins.get(key)
        if item is None:
            return None
        tier, expires = item
        if expires < time.monotonic():
            self._pins.pop(key, None)
            return None
        return tier

    async def set(self, key: str, tier: str, ttl_s: float) -> None:
        self._pins[key] = (tier, time.monotonic() + ttl_s)
        self._pins.move_to_end(key)
        while len(self._pins) > self._capacity:
            self._pins.popitem(last=False)


def session_key(ctx: CallContext) -> str:
    """`x-session-id`, else a hash of the system prompt and the first user message."""
    if ctx.session_id:
        return "s:" + ctx.session_id
    system = ""
    first_user = ""
    for message in ctx.request.messages:
        role = message.get("role")
        if role in ("system", "developer") and not system:
            system = str(message.get("content"))
        elif role == "user":
            first_user = str(message.get("content"))
            break
    return "h:" + hashlib.sha256(f"{ctx.caller}\0{system}\0{first_user}".encode()).hexdigest()[:32]


class TierSelection(BasePlugin):
    name = "tier_selection"

    def __init__(
        self,
        tiers: list[str],
        task_types: dict[str, TaskType],
        pins: PinStore,
        pin_ttl_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.tiers = tiers
        self.rank = {tier: i for i, tier in enumerate(tiers)}
        self.task_types = task_types
        self.pins = pins
        self.pin_ttl_s = pin_ttl_s
        self.rng = rng or random.Random()

    async def before_call(self, ctx: CallContext) -> None:
        request = ctx.request
        if request.kind == "embedding":
            return  # embeddings go to the embeddings group; there is no task to route
        if request.task_type is None:
            request.task_type, why = infer_task_type(request.prompt_text(), bool(request.tools))
            ctx.task_reason = f"inferred {request.task_type} ({why})"
        elif request.task_type not in self.task_types:
            raise InvalidRequest(
                f"unknown task_type '{request.task_type}'; known task types: {', '.join(sorted(self.task_types))}",
                param="task_type",
            )
        if not ctx.auto:
            return
        state = ctx.learned
        task = request.task_type
        tier = state.assignments.get(task) or self.task_types[task].tier
        reason = f"task {task} -> {tier}"
        share = state.exploration.get(task, 0.0)
        if share and self.rank[tier] > 0 and self.rng.random() < share:
            tier = self.tiers[self.rank[tier] - 1]
            reason += f", exploring {tier}"
        if self.pin_ttl_s:
            key = session_key(ctx)
            ctx.session_key = key
            pinned = await self.pins.get(key)
            if pinned in self.rank and self.rank[pinned] > self.rank[tier]:
                tier, reason = pinned, reason + f", pinned to {pinned} by session"
        ctx.tier = ctx.target = tier
        via = f"alias {ctx.alias} -> " if ctx.alias else ""
        why = f" ({ctx.task_reason})" if ctx.task_reason else ""
        ctx.route_reason = f"{via}{reason}{why}"

    async def after_call(self, ctx: CallContext, result: CallResult) -> CallResult:
        key = ctx.session_key
        if key and ctx.tier in self.rank:
            await self.pins.set(key, ctx.tier, self.pin_ttl_s)
        return result
