"""Running generated code out of the gateway's process, isolated and bounded (see runner.py)."""

from plugins.sandbox.runner import (
    RunResult,
    Sandbox,
    SandboxBusy,
    SandboxConfig,
    SandboxError,
    SandboxRefused,
)
from plugins.sandbox.slots import SandboxStats, Slots

__all__ = [
    "RunResult",
    "Sandbox",
    "SandboxBusy",
    "SandboxConfig",
    "SandboxError",
    "SandboxRefused",
    "SandboxStats",
    "Slots",
]
