"""`AsyncLLMGatewayClient`: the asyncio client, the same API awaited. It runs `_core.Core`'s plans
with `httpx.AsyncClient`; file work (the offline log) goes to a worker thread."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, overload

import httpx

from ._config import ClientConfig, resolve_config
from ._core import Core, Plan, Send, Sleep
from ._protocol import Outcome, Reply
from ._transport import AsyncChatStream, failure, timeout
from .types import ChatResult, ClassifyResult, CompletionResult, Status

T = TypeVar("T")


class AsyncLLMGatewayClient:
    """The async twin of `LLMGatewayClient` (same arguments; `sleep` is an async function)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        self.config = resolve_config(config, base_url=base_url, api_key=api_key, **options)
        self._core = Core(self.config, rng=rng, clock=clock)
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)

    # -- the API ---------------------------------------------------------------------------------

    async def completion(
        self, task_type: str, input: str, language: str | None = None, *, model: str | None = None,
        tier: str | None = None, max_tokens: int | None = None, system: str | None = None,
    ) -> CompletionResult:
        return await self._run(self._core.completion(task_type, input, language, model, tier, max_tokens, system))

    @overload
    async def chat(self, messages: list[dict[str, Any]], model: str = ..., stream: Literal[False] = ...,
                   tools: list[dict[str, Any]] | None = ..., **params: Any) -> ChatResult: ...

    @overload
    async def chat(self, messages: list[dict[str, Any]], model: str = ..., *, stream: Literal[True],
                   tools: list[dict[str, Any]] | None = ..., **params: Any) -> AsyncChatStream: ...

    async def chat(
        self, messages: list[dict[str, Any]], model: str = "auto", stream: bool = False,
        tools: list[dict[str, Any]] | None = None, **params: Any,
    ) -> ChatResult | AsyncChatStream:
        result = await self._run(self._core.chat(messages, model, stream, tools, params))
        if stream:
            return AsyncChatStream(result)
        assert isinstance(result, ChatResult)
        return result

    async def classify(
        self, input: str, labels: list[str], *, task: str | None = None, language: str | None = None,
    ) -> ClassifyResult:
        return await self._run(self._core.classify(input, labels, task, language))

    async def health(self) -> bool:
        return await self._run(self._core.check_health())

    async def get_status(self) -> Status:
        return await self._run(self._core.status())

    async def upload_offline(self) -> None:
        await self._run(self._core.upload_offline())

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncLLMGatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- running plans ---------------------------------------------------------------------------

    async def _run(self, plan: Plan[T]) -> T:
        try:
            action = next(plan)
            while True:
                if isinstance(action, Send):
                    action = plan.send(await self._send(action))
                elif isinstance(action, Sleep):
                    await self._sleep(action.seconds)
                    action = plan.send(None)
                else:
                    try:
                        value = await asyncio.to_thread(action.fn)
                    except Exception as exc:  # local file trouble: the plan decides what it means
                        action = plan.throw(exc)
                    else:
                        action = plan.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            plan.close()

    async def _send(self, action: Send) -> Outcome:
        request = self._http.build_request(action.method, action.url, json=action.json, headers=action.headers,
                                           timeout=timeout(action))
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return failure(exc)
        if action.stream and response.is_success:
            return Reply(response.status_code, response.headers, stream=response)
        try:
            body = await response.aread()
        except httpx.TransportError as exc:
            return failure(exc)
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, body)
