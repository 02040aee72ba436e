"""A shared sandbox for the execution tests (warm workers cost a few tens of ms each to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.types import ChatRequest, ChatResponse
from plugins.sandbox import Sandbox, SandboxConfig, SandboxRefused
from plugins.validators.execution import ExecutionConfig, ExecutionValidator

CONFIG = ExecutionConfig(enabled_task_types=["code_generation", "code_completion"], pool_size=2)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(SandboxConfig(pool_size=2))
    try:
        box.probe()
    except SandboxRefused as exc:  # no namespaces on this platform: nothing isolated to test
        box.close()
        pytest.skip(f"sandbox isolation unavailable here: {exc}")
    yield box
    box.close()


@pytest.fixture
def validator(sandbox: Sandbox) -> ExecutionValidator:
    return ExecutionValidator(CONFIG, sandbox=sandbox)


def code_request(prompt: str, task_type: str = "code_generation") -> ChatRequest:
    return ChatRequest(messages=[{"role": "system", "content": "You write Python."},
                                 {"role": "user", "content": prompt}], task_type=task_type)


def answer(text: str) -> ChatResponse:
    return ChatResponse(text=text, finish_reason="stop")


def fenced(code: str) -> str:
    return f"Here is the function:\n\n```python\n{code.strip()}\n```\n"
