"""Plugin assembly: names from config -> plugin objects, in the order config lists them.

Explicit, like starlette's `build_middleware_stack`: every built-in is constructed here with its
dependencies, so reading this function tells you the whole pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.records import AuditRecord

from .audit import Audit, Sink
from .base import Plugin
from .cascade import Cascade, Policy
from .gate import Gate
from .tasks import TaskType
from .tiering import PinStore, TierSelection

BUILTIN_PLUGINS = ("audit", "tier_selection", "cascade", "gate")


@dataclass
class PluginDeps:
    tiers: list[str]
    task_types: dict[str, TaskType]
    policy: Policy
    pins: PinStore
    pin_ttl_s: float
    sink: Sink | None
    observers: list[Callable[[AuditRecord], None]] = field(default_factory=list)
    spot_check_share: float = 0.0


def build_plugins(names: list[str], deps: PluginDeps) -> list[Plugin]:
    plugins: list[Plugin] = []
    for name in names:
        if name == "audit":
            if deps.sink is not None or deps.observers:
                plugins.append(Audit(deps.sink, deps.observers, deps.spot_check_share))
        elif name == "tier_selection":
            plugins.append(TierSelection(deps.tiers, deps.task_types, deps.pins, deps.pin_ttl_s))
        elif name == "cascade":
            plugins.append(Cascade(deps.tiers, deps.task_types, deps.policy))
        elif name == "gate":
            plugins.append(Gate())
        else:
            raise ValueError(f"plugins: unknown plugin {name!r} (built-ins: {', '.join(BUILTIN_PLUGINS)})")
    return plugins
