"""An in-process `core.upstream.Upstream` for fast pipeline tests (like pydantic-ai's FunctionModel).

Each tier answers from a function of the request (or raises a `GatewayError`); every call is
recorded. No sockets, no litellm: what the pipeline decides is tested on its own, while the
socket-level tests keep covering the real adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import GatewayError, UpstreamUnavailable
from core.types import ChatRequest, ChatResponse
from core.upstream import Attempt, Served, StreamHandle

Answer = Callable[[ChatRequest], "str | GatewayError"]


@dataclass
class Call:
    target: str
    kind: str
    stream: bool


@dataclass
class UpstreamDouble:
    """`answers`: target (tier or deployment) -> text, or a function of the request giving text or an error."""

    answers: dict[str, str | Answer]
    cost_per_call: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    forbidden: frozenset[str] = frozenset()

    @property
    def groups(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(self.answers)

    def _answer(self, target: str, request: ChatRequest) -> tuple[str, Served]:
        answer = self.answers.get(target)
        if answer is None:
            raise UpstreamUnavailable(f"no deployment can serve '{target}'")
        text = answer(request) if callable(answer) else answer
        attempt = Attempt(tier=target, deployment=f"{target}-1", provider="double", outcome="ok")
        if isinstance(text, GatewayError):
            text.attempts = [Attempt(tier=target, deployment=f"{target}-1", provider="double",
                                     outcome=type(text).__name__)]
            raise text
        served = Served(model=f"{target}-model", deployment=f"{target}-1", provider="double",
                        cost=self.cost_per_call.get(target, 0.0), attempts=[attempt])
        return text, served

    async def chat(self, model: str, request: ChatRequest, timeout: float) -> tuple[ChatResponse, Served]:
        self.calls.append(Call(model, "chat", False))
        text, served = self._answer(model, request)
        body = {"id": "chatcmpl-double", "object": "chat.completion", "model": served.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
        return ChatResponse.from_openai(body), served

    async def chat_stream(self, model: str, request: ChatRequest, timeout: float) -> StreamHandle:
        self.calls.append(Call(model, "chat", True))
        text, served = self._answer(model, request)

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield {"id": "chatcmpl-double", "model": served.model,
                       "choices": [{"index": 0, "delta": {"content": piece}}]}
            yield {"id": "chatcmpl-double", "model": served.model,
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

        return StreamHandle(chunks(), served)

    async def text_completion(self, model: str, prompt: Any, params: dict[str, Any],
                              timeout: float) -> tuple[dict[str, Any], Served]:
        self.calls.append(Call(model, "completion", False))
        request = ChatRequest(messages=[{"role": "user", "content": str(prompt)}])
        text, served = self._answer(model, request)
        return {"object": "text_completion", "model": served.model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}, served

    async def embedding(self, model: str, inputs: Any, params: dict[str, Any], encoding_format: str,
                        timeout: float) -> tuple[dict[str, Any], Served]:
        self.calls.append(Call(model, "embedding", False))
        _, served = self._answer(model, ChatRequest(messages=[]))
        return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": served.model, "usage": {"prompt_tokens": 4, "total_tokens": 4}}, served

    async def earliest_cooldown_end(self, model: str) -> float | None:
        return None
