"""What the execution validator plans with: its config (`ExecutionConfig`), the plan a language
strategy makes of an answer (`Plan`: the sandbox job, and a `Check` per case saying how to judge
its result), and the `Language` protocol such a strategy implements (`execution_python.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from plugins.sandbox import SandboxConfig
from plugins.sandbox.runner import DEFAULT_HIDDEN
from plugins.validators.examples import Example


class ExecutionConfig(BaseModel):
    """`quality.execution` in the gateway config. Off until `enabled_task_types` names task
    types ("*": any request that carries examples)."""

    model_config = ConfigDict(extra="forbid")

    enabled_task_types: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    call_timeout_s: float = Field(default=0.5, gt=0, le=60)
    cpu_s: int = Field(default=2, ge=1, le=60)
    memory_mb: int = Field(default=256, ge=32, le=16384)
    max_procs: int = Field(default=16, ge=1, le=4096)
    max_output_kb: int = Field(default=64, ge=1, le=65536)
    max_file_mb: int = Field(default=8, ge=1, le=1024)
    pool_size: int = Field(default=2, ge=1, le=64)
    queue_wait_s: float = Field(default=0.25, ge=0, le=60)
    warm: bool = True
    edge_cases: bool = True
    max_edge_cases: int = Field(default=8, ge=0, le=32)
    allow_unisolated: bool = False
    hidden_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_HIDDEN))

    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(
            timeout_s=self.timeout_s, cpu_s=self.cpu_s, memory_mb=self.memory_mb, max_procs=self.max_procs,
            max_output_kb=self.max_output_kb, max_file_mb=self.max_file_mb, pool_size=self.pool_size,
            warm=self.warm, allow_unisolated=self.allow_unisolated, hidden_paths=tuple(self.hidden_paths),
        )


@dataclass(frozen=True, slots=True)
class Check:
    """How to judge one case's result. `compare`: output | value | true | tokens | none."""

    id: int
    label: str
    compare: str
    expected_text: str | None = None
    expected: tuple[bool, Any] = (False, None)  # (known in advance, value)
    scored: bool = True
    edge: bool = False
    lenient: bool = False  # a list and a tuple with the same items are equal (JSON-shaped examples)


@dataclass(slots=True)
class Plan:
    """A job for the sandbox and how to judge its results."""

    language: str
    code: str
    cases: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return sum(1 for check in self.checks if check.scored)

    def job(self, config: ExecutionConfig) -> dict[str, Any]:
        return {"language": self.language, "code": self.code, "cases": self.cases,
                "timeout_s": config.timeout_s, "call_timeout_s": config.call_timeout_s}


class Language(Protocol):
    """One programming language: turns a prompt's examples and an answer into a `Plan` (or the
    reason it cannot, to abstain with). The sandbox's harness runs the plan's cases."""

    name: str

    def plan(self, prompt: str, answer: str, examples: Sequence[Example], config: ExecutionConfig) -> Plan | str: ...
