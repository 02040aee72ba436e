"""Request plumbing shared by the three dialects (OpenAI, Ollama, Anthropic).

:func:`begin` does everything that happens before a dialect renders its answer: parse the
body, record the request, choose the behaviour, wait ``latency_ms``, and short-circuit with
a dropped connection, a scripted error status or a malformed body. :func:`paced` drives a
stream (pacing, stalls, mid-stream drops, a malformed frame) from frames the dialect built.

Dropping a connection: uvicorn does not put the socket in the ASGI scope, so the app class
(:mod:`fake_upstream.app`) copies uvicorn's transport into ``scope[TRANSPORT_KEY]`` and
:class:`DropConnection` calls ``transport.abort()``. The client sees the TCP connection closed
with no (further) bytes: before the headers, httpx raises ``RemoteProtocolError("Server
disconnected without sending a response.")`` and the openai/anthropic SDKs raise
``APIConnectionError``; mid-stream, the client sees an incomplete chunked body
(``RemoteProtocolError: peer closed connection without sending complete message body``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from fake_upstream.behaviour import DEFAULT_TEXT, Behaviour, extract_directive
from fake_upstream.state import FakeState, RecordedRequest

TRANSPORT_KEY = "fake_upstream.transport"
MALFORMED_BODY = b'{"id": "fake-malformed", "choices": [{"message": {"content": "this is not valid JSON'
_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")

# (status, message) -> JSON error body in the dialect's shape
ErrorShape = Callable[[int, str], dict[str, Any]]
# parsed body -> (last user text, rough prompt word count)
PromptOf = Callable[[dict[str, Any]], tuple[str, int]]


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def words(text: str) -> int:
    return len(text.split())


def split_chunks(text: str, chunk_words: int) -> list[str]:
    """Split ``text`` into stream pieces of ``chunk_words`` words; ``"".join`` gives it back."""
    if not text:
        return []
    pieces = _WORD_BOUNDARY.split(text)
    if chunk_words == 1:
        return pieces
    return ["".join(pieces[i : i + chunk_words]) for i in range(0, len(pieces), chunk_words)]


def split_in_two(s: str) -> list[str]:
    """Tool-call arguments are streamed in two pieces, like real providers do (2+ deltas)."""
    if len(s) < 2:
        return [s]
    mid = len(s) // 2
    return [s[:mid], s[mid:]]


def text_of(content: Any) -> str:
    """Text of an OpenAI/Anthropic message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif "content" in part:  # anthropic tool_result
                    out.append(text_of(part["content"]))
            elif isinstance(part, str):
                out.append(part)
        return " ".join(out)
    return ""


def messages_prompt(messages: Any, extra: str = "") -> tuple[str, int]:
    """(last user text, word count of all messages) for chat-style bodies."""
    last_user = ""
    count = words(extra) if extra else 0
    if isinstance(messages, list):
        for m in messages:
            if not isinstance(m, dict):
                continue
            t = text_of(m.get("content"))
            count += words(t)
            if m.get("role") == "user":
                last_user = t
    return last_user, count


def inputs_prompt(value: Any) -> tuple[str, int]:
    """(last text, word count) of a completion prompt or an embedding input."""
    if isinstance(value, str):
        return value, words(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[-1], sum(words(v) for v in value)
    if isinstance(value, list):  # token ids
        return "", len(value)
    return "", 0


def retry_after_value(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def response_headers(b: Behaviour) -> dict[str, str]:
    if b.retry_after is None:
        return b.headers
    return {**b.headers, "Retry-After": retry_after_value(b.retry_after)}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(obj), status, headers, media_type="application/json")


@dataclass(slots=True)
class Call:
    """One API request after :func:`begin`: what the dialect needs to render the answer."""

    body: dict[str, Any]
    model: str
    behaviour: Behaviour
    n: int
    last_user: str
    prompt_words: int
    scope: Scope

    def text(self) -> str:
        """The rendered answer text ("" when the behaviour answers with tool calls only)."""
        b = self.behaviour
        template = b.text if b.text is not None else ("" if b.tool_calls else DEFAULT_TEXT)
        if "{" not in template:
            return template
        return (
            template.replace("{model}", self.model).replace("{last_user}", self.last_user).replace("{n}", str(self.n))
        )

    def usage(self, text: str) -> tuple[int, int]:
        """(prompt_tokens, completion_tokens): scripted, or rough word counts."""
        b = self.behaviour
        prompt = b.prompt_tokens if b.prompt_tokens is not None else max(1, self.prompt_words)
        if b.completion_tokens is not None:
            return prompt, b.completion_tokens
        completion = words(text) + sum(words(tc.arguments_json) for tc in b.tool_calls)
        return prompt, max(1, completion)

    @property
    def headers(self) -> dict[str, str]:
        return response_headers(self.behaviour)


async def begin(
    request: Request,
    state: FakeState,
    error_shape: ErrorShape,
    prompt_of: PromptOf,
    *,
    stream_default: bool = False,
) -> Call | Response:
    """Parse, record, choose the behaviour, apply latency and the pre-answer failures."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str):
        model = None
    state.record(RecordedRequest(request.method, request.url.path, model, body, dict(request.headers), time.time()))
    if not isinstance(body, dict):
        return json_response(error_shape(400, "fake upstream: request body is not a JSON object"), 400)
    model = model or ""
    last_user, prompt_words = prompt_of(body)
    directive = None
    if "[[fake:" in last_user:
        try:
            obj, last_user = extract_directive(last_user)
            directive = Behaviour.from_dict(obj)
        except (ValueError, TypeError) as exc:
            return json_response(error_shape(400, f"fake upstream: {exc}"), 400)
    behaviour, n = state.choose(model, directive)
    delay = state.latency_s(behaviour)
    if delay > 0 and await _client_left_within(request.receive, delay):
        return DropConnection()
    stream = bool(body.get("stream", stream_default))
    if behaviour.drop_connection or (behaviour.drop_after_chunks is not None and not stream):
        return DropConnection()
    if behaviour.status is not None:
        message = behaviour.error_message or f"fake upstream: scripted HTTP {behaviour.status} for {model}"
        return json_response(error_shape(behaviour.status, message), behaviour.status, response_headers(behaviour))
    if behaviour.malformed_json and not stream:
        return Response(MALFORMED_BODY, 200, response_headers(behaviour), media_type="application/json")
    return Call(body, model, behaviour, n, last_user, prompt_words, request.scope)


async def _client_left_within(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds``; return early (True) if the client disconnects meanwhile."""
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


class DropConnection(Response):
    """Close the client's TCP connection without sending a (complete) response."""

    def __init__(self) -> None:
        super().__init__(b"", 200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = scope.get(TRANSPORT_KEY)
        if transport is None:
            # Not served by uvicorn: start a response and never finish it; the server then
            # closes the connection (and may log "returned without completing response").
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
            return
        transport.abort()
        # Let the server notice the disconnect, so it neither sends a 500 nor logs an error.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while (await receive())["type"] != "http.disconnect":
                    pass


async def drop_midstream(scope: Scope) -> None:
    """Abort the connection in the middle of a streamed body."""
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        raise ConnectionAbortedError("fake upstream: scripted drop (no transport to abort)")
    transport.abort()
    # StreamingResponse's disconnect listener cancels us once the server sees the close.
    await asyncio.sleep(5)


async def paced(
    call: Call,
    head: Sequence[bytes],
    body: Sequence[bytes],
    tail: Sequence[bytes],
    malformed: bytes,
) -> AsyncIterator[bytes]:
    """Yield a stream's frames, applying the behaviour's pacing, stall, drop and malformed frame.

    ``body`` frames are the counted chunks (content pieces, tool-call pieces). A stall or drop
    "after N chunks" happens once N body frames went out, or before the tail if there are fewer.
    """
    b = call.behaviour
    for frame in head:
        yield frame
    if b.malformed_json:
        yield malformed
    delay = b.chunk_words / b.tokens_per_s if b.tokens_per_s > 0 else 0.0
    stalled = False
    for i in range(len(body) + 1):
        if not stalled and b.stall_after_chunks is not None and i >= b.stall_after_chunks:
            stalled = True
            await asyncio.sleep(b.stall_s)  # cancelled when the client disconnects
        if b.drop_after_chunks is not None and i >= b.drop_after_chunks:
            await drop_midstream(call.scope)
            return
        if i == len(body):
            break
        if delay and i:
            await asyncio.sleep(delay)
        yield body[i]
    for frame in tail:
        yield frame


def sse(obj: Any, event: str | None = None) -> bytes:
    data = json.dumps(obj)
    if event is None:
        return f"data: {data}\n\n".encode()
    return f"event: {event}\ndata: {data}\n\n".encode()


def ndjson(obj: Any) -> bytes:
    return (json.dumps(obj) + "\n").encode()
