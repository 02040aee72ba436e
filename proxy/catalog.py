"""Which model names the gateway accepts, and what each one means.

Agents send their own model names unchanged (`gpt-4o`, `claude-sonnet-4`), so besides the tier
names, `auto` and the configured deployments, config can map glob aliases onto any of those.
Resolution is pure and cached: the set of names only changes when the config does.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache

from core.errors import ModelNotFound

from .settings import Settings

AUTO = "auto"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a requested model name resolved to."""

    name: str  # "auto", a tier/group name, or a deployment's public name
    kind: str  # "auto" | "tier" | "group" | "deployment"
    via_alias: str | None = None


class Catalog:
    def __init__(self, settings: Settings, available: set[str]) -> None:
        """`available` holds the group and deployment names the router was actually built with."""
        self.tiers = [t for t in settings.tiers]
        self.default_tier = settings.default_tier
        groups = {d.model_name for d in settings.model_list}
        self.groups = sorted(g for g in groups if g not in self.tiers and g in available)
        local = {f"{m.name}@{g}" for m in settings.local_models for g in m.groups}
        named = {d.public_name for d in settings.model_list} | local
        self.deployments = sorted(n for n in named if n in available and n not in groups)
        self.aliases = dict(settings.aliases)
        self.available = available
        self.resolve = lru_cache(maxsize=4096)(self._resolve)

    def _resolve(self, requested: str) -> Resolved:
        direct = self._direct(requested)
        if direct is not None:
            return direct
        for pattern, target in self.aliases.items():
            if fnmatch.fnmatchcase(requested, pattern):
                resolved = self._direct(target)
                if resolved is not None:
                    return Resolved(resolved.name, resolved.kind, via_alias=pattern)
        raise ModelNotFound(
            f"The model '{requested}' does not exist on this gateway. Use 'auto', a tier "
            f"({', '.join(self.tiers)}) or one of the names listed by GET /v1/models.",
            param="model",
        )

    def _direct(self, name: str) -> Resolved | None:
        if name == AUTO:
            return Resolved(AUTO, "auto")
        if name in self.tiers:
            return Resolved(name, "tier")
        if name in self.groups:
            return Resolved(name, "group")
        if name in self.deployments:
            return Resolved(name, "deployment")
        return None

    def listing(self) -> list[str]:
        """Names for GET /v1/models: auto, the tiers that can serve, other groups, deployments."""
        tiers = [t for t in self.tiers if t in self.available]
        return [AUTO, *tiers, *self.groups, *self.deployments]
