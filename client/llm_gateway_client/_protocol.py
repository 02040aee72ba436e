"""The gateway's wire format: request bodies, answers to typed results, errors, SSE. Pure functions.

    POST /v1/completion        {caller, task_type, input, language, model|tier, max_tokens, system}
                               -> {id, status, confidence, model, task_type, latency_ms, tokens: {in, out}, output}
    POST /v1/classify          {caller, input, labels, task, language}
                               -> {id, label, confidence, status, model, latency_ms, tokens: {in, out}}
    POST /v1/chat/completions  OpenAI's shape; streamed as SSE `data:` lines ending in `data: [DONE]`,
                               or in one `data: {"error": {...}}` event
    errors                     {"error": {"message", "type", "param", "code"}} + x-request-id
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._config import ClientConfig
from ._errors import (
    AuthenticationError,
    BadRequestError,
    GatewayClientError,
    RateLimitedError,
    UpstreamError,
)
from ._retry import parse_retry_after
from .types import ChatResult, ClassifyResult, CompletionResult

VERSION = "0.1.0"
USER_AGENT = f"llm-gateway-client/{VERSION}"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer. `stream` is the still-open response of a successful streamed request."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: Any = None

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Failure:
    """No HTTP answer: the connection failed, timed out, or broke."""

    kind: Literal["connect", "timeout", "network"]
    detail: str

    def describe(self) -> str:
        what = {"connect": "could not connect", "timeout": "timed out", "network": "the connection broke"}
        return f"{what[self.kind]} ({self.detail})"


Outcome = Reply | Failure


# -- requests -------------------------------------------------------------------------------------


def headers(config: ClientConfig) -> dict[str, str]:
    out = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if config.api_key:
        out["Authorization"] = f"Bearer {config.api_key}"
    return out


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def completion_body(
    config: ClientConfig, task_type: str, text: str, language: str | None, model: str | None, tier: str | None,
    max_tokens: int | None, system: str | None,
) -> dict[str, Any]:
    return _compact({"caller": config.caller, "task_type": task_type, "input": text, "language": language,
                     "model": model, "tier": tier, "max_tokens": max_tokens, "system": system})


def classify_body(
    config: ClientConfig, text: str, labels: list[str], task: str | None, language: str | None
) -> dict[str, Any]:
    return _compact({"caller": config.caller, "input": text, "labels": list(labels), "task": task,
                     "language": language})


def chat_body(
    model: str, messages: list[dict[str, Any]], stream: bool, tools: list[dict[str, Any]] | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {**params, "model": model, "messages": messages}
    if stream:
        body["stream"] = True
    if tools:
        body["tools"] = tools
    return body


# -- answers --------------------------------------------------------------------------------------


def _object(reply: Reply, route: str) -> dict[str, Any]:
    data = reply.json()
    if not isinstance(data, dict):
        raise UpstreamError(f"the gateway's answer on {route} is not a JSON object; is LLM_GATEWAY_URL the gateway?",
                            status_code=reply.status, request_id=reply.headers.get("x-request-id"))
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tokens(data: dict[str, Any]) -> tuple[int, int]:
    tokens = _dict(data.get("tokens"))
    return int(tokens.get("in") or 0), int(tokens.get("out") or 0)


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _request_id(data: dict[str, Any], reply: Reply) -> str:
    return str(data.get("id") or reply.headers.get("x-request-id") or "")


def _model(data: dict[str, Any], reply: Reply) -> str:
    return str(data.get("model") or reply.headers.get("x-gateway-model") or "")


def parse_completion(reply: Reply) -> CompletionResult:
    data = _object(reply, "/v1/completion")
    tokens_in, tokens_out = _tokens(data)
    return CompletionResult(
        id=_request_id(data, reply), output=str(data.get("output") or ""), model=_model(data, reply), mode="gateway",
        task_type=str(data.get("task_type") or ""), status=data.get("status"),
        confidence=_float(data.get("confidence")), latency_ms=_float(data.get("latency_ms")) or 0.0,
        tokens_in=tokens_in, tokens_out=tokens_out,
    )


def parse_classify(reply: Reply) -> ClassifyResult:
    data = _object(reply, "/v1/classify")
    tokens_in, tokens_out = _tokens(data)
    label = data.get("label")
    return ClassifyResult(
        id=_request_id(data, reply), label=label if isinstance(label, str) else None, model=_model(data, reply),
        mode="gateway",
        status=data.get("status"), confidence=_float(data.get("confidence")),
        latency_ms=_float(data.get("latency_ms")) or 0.0, tokens_in=tokens_in, tokens_out=tokens_out,
    )


def chat_result(
    data: dict[str, Any], mode: Literal["gateway", "fallback"], latency_ms: float,
    headers: Mapping[str, str] | None = None, request_id: str | None = None,
) -> ChatResult:
    """A ChatResult from an OpenAI `chat.completion` body (the gateway's, or one built locally)."""
    headers = headers or {}
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("the chat answer has no choices", request_id=headers.get("x-request-id"))
    message, usage = _dict(choices[0].get("message")), _dict(data.get("usage"))
    return ChatResult(
        id=str(data.get("id") or ""), model=str(data.get("model") or headers.get("x-gateway-model") or ""),
        mode=mode, content=message.get("content"), message=message, finish_reason=choices[0].get("finish_reason"),
        tool_calls=list(message.get("tool_calls") or []), request_id=request_id or headers.get("x-request-id"),
        tier=headers.get("x-gateway-tier"), status=headers.get("x-gateway-status"),
        confidence=_float(headers.get("x-gateway-confidence")), latency_ms=round(latency_ms, 1),
        tokens_in=int(usage.get("prompt_tokens") or 0), tokens_out=int(usage.get("completion_tokens") or 0), raw=data,
    )


def parse_chat(reply: Reply, latency_ms: float) -> ChatResult:
    return chat_result(_object(reply, "/v1/chat/completions"), "gateway", latency_ms, reply.headers)


# -- errors ---------------------------------------------------------------------------------------


def error_from_reply(reply: Reply) -> GatewayClientError:
    """The exception for a gateway error answer (any status >= 400)."""
    retry_after = parse_retry_after(reply.headers.get("retry-after"))
    return error_from_info(reply.status, error_info(reply), reply.headers.get("x-request-id"), retry_after)


def error_info(reply: Reply) -> dict[str, Any]:
    """The `{"message", "type", ...}` of an error answer (built from the raw text when it is not JSON)."""
    data = reply.json()
    info = data.get("error") if isinstance(data, dict) else None
    if isinstance(info, dict):
        return info
    text = reply.body[:300].decode("utf-8", "replace").strip()
    return {"message": text or f"HTTP {reply.status} with no body"}


_STATUS_BY_TYPE = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                   "not_found_error": 404, "rate_limit_error": 429}


def error_from_info(
    status: int | None, info: dict[str, Any], request_id: str | None = None, retry_after: float | None = None,
) -> GatewayClientError:
    """Map `{"message", "type", "param", "code"}` (an error body or a stream's error event)."""
    message = str(info.get("message") or "no message").rstrip(".")
    error_type = info.get("type") if isinstance(info.get("type"), str) else None
    if status is None:  # an error event inside a stream: the type says what it was
        status = _STATUS_BY_TYPE.get(error_type or "", 502)
    fields: dict[str, Any] = {"status_code": status, "error_type": error_type, "request_id": request_id,
                              "code": info.get("code") if isinstance(info.get("code"), str) else None,
                              "param": info.get("param") if isinstance(info.get("param"), str) else None}
    if status == 401:
        return AuthenticationError(f"the gateway refused the API key (401: {message}); check LLM_GATEWAY_API_KEY "
                                   "(or api_key=...)", **fields)
    if status == 403:
        return AuthenticationError(f"the gateway does not allow this key here (403: {message}); check "
                                   "LLM_GATEWAY_API_KEY, or ask for a key with the needed role", **fields)
    if status == 429:
        wait = f" in {retry_after:g} s" if retry_after is not None else " later"
        return RateLimitedError(f"the gateway rate-limited this caller (429: {message}); try again{wait}",
                                retry_after=retry_after, **fields)
    if 400 <= status < 500:
        return BadRequestError(f"the gateway rejected the request ({status}: {message}); fix the request, "
                               "it is not retried", **fields)
    return UpstreamError(f"the gateway could not answer ({status}: {message}); try again later, or check the "
                         "gateway's logs with this request id", **fields)


# -- streaming ------------------------------------------------------------------------------------


class SSEDecoder:
    """OpenAI SSE lines to chunk dicts; an error event raises; `[DONE]` ends the stream."""

    def __init__(self, request_id: str | None = None) -> None:
        self.done = False
        self.request_id = request_id

    def feed(self, line: str) -> dict[str, Any] | None:
        if self.done or not line.startswith("data:"):
            return None  # blank separators, comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            raise UpstreamError("the gateway sent an unreadable stream event; retry the call",
                                request_id=self.request_id) from None
        if not isinstance(chunk, dict):
            raise UpstreamError("the gateway sent a stream event that is not an object", request_id=self.request_id)
        if isinstance(chunk.get("error"), dict):
            self.done = True
            raise error_from_info(None, chunk["error"], self.request_id)
        return chunk

    def end(self) -> None:
        """The body ended: without `[DONE]` the answer is incomplete."""
        if not self.done:
            raise UpstreamError("the gateway's stream ended before [DONE]: the answer is incomplete; retry the call",
                                request_id=self.request_id)

    def broken(self, exc: BaseException) -> UpstreamError:
        return UpstreamError(f"the stream from the gateway was cut ({type(exc).__name__}): the answer is "
                             "incomplete; retry the call", request_id=self.request_id)
