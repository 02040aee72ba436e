"""What the two clients share about httpx: timeouts, transport failures, and streamed chats.

`ChatStream` / `AsyncChatStream` are what `chat(..., stream=True)` returns: iterate them for
OpenAI `chat.completion.chunk` dicts; `mode`, `model` and `request_id` are known before the first
chunk. A gateway stream is read as SSE (an error event raises, a missing `[DONE]` raises); a
fallback answer is replayed as two chunks (content, then finish_reason and usage).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import httpx

from . import _fallback as local
from ._core import Send, StreamStart
from ._protocol import Failure, SSEDecoder
from .types import ChatResult, Mode


def timeout(action: Send) -> httpx.Timeout:
    connect, read = action.timeout
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


def failure(exc: httpx.TransportError) -> Failure:
    kind: Literal["connect", "timeout", "network"]
    if isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        kind = "connect"
    else:
        kind = "network"
    detail = str(exc).strip()
    return Failure(kind, f"{type(exc).__name__}: {detail[:200]}" if detail else type(exc).__name__)


class _Stream:
    def __init__(self, started: StreamStart | ChatResult) -> None:
        self._response: Any = None
        self._chunks: list[dict[str, Any]] = []
        self.mode: Mode
        if isinstance(started, StreamStart):
            self.mode, self.model, self.request_id = "gateway", started.model, started.request_id
            self._response = started.response
        else:  # a fallback answer, replayed
            self.mode, self.model, self.request_id = started.mode, started.model, started.request_id
            self._chunks = local.stream_chunks(started.raw)
        self._decoder = SSEDecoder(self.request_id)


class ChatStream(_Stream):
    """A streamed chat: `for chunk in stream`, or `with client.chat(..., stream=True) as stream`."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._response is None:
            yield from self._chunks
            return
        try:
            for line in self._response.iter_lines():
                chunk = self._decoder.feed(line)
                if chunk is not None:
                    yield chunk
                elif self._decoder.done:
                    break
            self._decoder.end()
        except httpx.TransportError as exc:
            raise self._decoder.broken(exc) from exc
        finally:
            self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncChatStream(_Stream):
    """A streamed chat: `async for chunk in stream`, or `async with await client.chat(..., stream=True)`."""

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._response is None:
            for replayed in self._chunks:
                yield replayed
            return
        try:
            async for line in self._response.aiter_lines():
                chunk = self._decoder.feed(line)
                if chunk is not None:
                    yield chunk
                elif self._decoder.done:
                    break
            self._decoder.end()
        except httpx.TransportError as exc:
            raise self._decoder.broken(exc) from exc
        finally:
            await self.close()

    async def close(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
