"""`LLMGatewayClient`: the blocking client. All logic lives in `_core.Core`; this runs its plans."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar, overload

import httpx

from ._config import ClientConfig, resolve_config
from ._core import Core, Plan, Send, Sleep
from ._protocol import Outcome, Reply
from ._transport import ChatStream, failure, timeout
from .types import ChatResult, ClassifyResult, CompletionResult, Status

T = TypeVar("T")


class LLMGatewayClient:
    """Talks to llm-gateway; falls back to a local Ollama when the gateway is down.

    Arguments override the environment (see `ClientConfig`); `options` are ClientConfig fields
    (`ollama_model=`, `health_cooldown=`, `max_attempts=`, `state_dir=`, ...). `sleep`, `rng` and
    `clock` are injectable for tests; `transport` is passed to `httpx.Client`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        config: ClientConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        self.config = resolve_config(config, base_url=base_url, api_key=api_key, **options)
        self._core = Core(self.config, rng=rng, clock=clock)
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, follow_redirects=False)

    # -- the API ---------------------------------------------------------------------------------

    def completion(
        self, task_type: str, input: str, language: str | None = None, *, model: str | None = None,
        tier: str | None = None, max_tokens: int | None = None, system: str | None = None,
    ) -> CompletionResult:
        """`POST /v1/completion`: `input` wrapped in the task type's prompt (e.g. "summarization")."""
        return self._run(self._core.completion(task_type, input, language, model, tier, max_tokens, system))

    @overload
    def chat(self, messages: list[dict[str, Any]], model: str = ..., stream: Literal[False] = ...,
             tools: list[dict[str, Any]] | None = ..., **params: Any) -> ChatResult: ...

    @overload
    def chat(self, messages: list[dict[str, Any]], model: str = ..., *, stream: Literal[True],
             tools: list[dict[str, Any]] | None = ..., **params: Any) -> ChatStream: ...

    def chat(
        self, messages: list[dict[str, Any]], model: str = "auto", stream: bool = False,
        tools: list[dict[str, Any]] | None = None, **params: Any,
    ) -> ChatResult | ChatStream:
        """`POST /v1/chat/completions` (OpenAI shape); `stream=True` returns an iterable of chunks."""
        result = self._run(self._core.chat(messages, model, stream, tools, params))
        if stream:
            return ChatStream(result)
        assert isinstance(result, ChatResult)
        return result

    def classify(
        self, input: str, labels: list[str], *, task: str | None = None, language: str | None = None,
    ) -> ClassifyResult:
        """`POST /v1/classify`: which of `labels` fits `input`."""
        return self._run(self._core.classify(input, labels, task, language))

    def health(self) -> bool:
        """Is the gateway ready? Cached: False without a request inside the cool-down after a failure."""
        return self._run(self._core.check_health())

    def get_status(self) -> Status:
        """`{"gateway": bool, "ollama": "up"|"down"|"unknown", "mode": "gateway"|"fallback"}`."""
        return self._run(self._core.status())

    def upload_offline(self) -> None:
        """Upload calls answered offline now (normally automatic once the gateway is back)."""
        self._run(self._core.upload_offline())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMGatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running plans ---------------------------------------------------------------------------

    def _run(self, plan: Plan[T]) -> T:
        try:
            action = next(plan)
            while True:
                if isinstance(action, Send):
                    action = plan.send(self._send(action))
                elif isinstance(action, Sleep):
                    self._sleep(action.seconds)
                    action = plan.send(None)
                else:
                    try:
                        value = action.fn()
                    except Exception as exc:  # local file trouble: the plan decides what it means
                        action = plan.throw(exc)
                    else:
                        action = plan.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            plan.close()

    def _send(self, action: Send) -> Outcome:
        request = self._http.build_request(action.method, action.url, json=action.json, headers=action.headers,
                                           timeout=timeout(action))
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return failure(exc)
        if action.stream and response.is_success:
            return Reply(response.status_code, response.headers, stream=response)
        try:
            body = response.read()
        except httpx.TransportError as exc:
            return failure(exc)
        finally:
            response.close()
        return Reply(response.status_code, response.headers, body)
