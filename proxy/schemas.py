"""Typed request bodies for the OpenAI routes, and their translation into `ChatRequest`.

Validation only checks shape and types (a wrong type is a 400 naming the field, never a 422);
what goes upstream is then copied from the raw body through the adapter's allowlist, so an
unknown-but-harmless field is ignored rather than forwarded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidRequest
from core.types import ChatRequest


class OpenModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionDef(OpenModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(OpenModel):
    type: Literal["function"] = "function"
    function: FunctionDef


class Message(OpenModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(OpenModel):
    include_usage: bool = False


class ChatBody(OpenModel):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=8)
    user: str | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    metadata: dict[str, Any] | None = None


class CompletionBody(OpenModel):
    model: str = Field(min_length=1)
    prompt: str | list[str] | list[int] | list[list[int]]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=8)
    user: str | None = None


class EmbeddingBody(OpenModel):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, gt=0)
    user: str | None = None


def validate(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"invalid value for '{loc}': {first['msg']}", param=loc or None) from None


def chat_request(body: dict[str, Any], allowed: frozenset[str], task_type: str | None) -> ChatRequest:
    """The validated chat body as the pipeline's `ChatRequest` (allowlisted params only)."""
    parsed: ChatBody = validate(ChatBody, body)
    metadata = body.get("metadata") or {}
    params = {k: v for k, v in body.items() if k in allowed and v is not None}
    return ChatRequest(
        messages=body["messages"],
        params=params,
        stream=parsed.stream,
        include_usage=bool(parsed.stream_options and parsed.stream_options.include_usage),
        task_type=task_type or _str_or_none(metadata.get("task_type")),
        language=_str_or_none(metadata.get("language")),
    )


def _payload_text(value: Any) -> str:
    """The text of a completion prompt or embeddings input (token-id lists have none)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(item for item in value if isinstance(item, str))
    return ""


def completion_request(body: dict[str, Any], allowed: frozenset[str], task_type: str | None) -> ChatRequest:
    """`/v1/completions` as a `ChatRequest` of kind `completion` (the prompt is sent as given)."""
    parsed: CompletionBody = validate(CompletionBody, body)
    params = {k: v for k, v in body.items() if k in allowed and v is not None}
    return ChatRequest(messages=[{"role": "user", "content": _payload_text(parsed.prompt)}], params=params,
                       stream=parsed.stream, task_type=task_type, kind="completion", payload=parsed.prompt)


def embedding_request(body: dict[str, Any], allowed: frozenset[str]) -> ChatRequest:
    """`/v1/embeddings` as a `ChatRequest` of kind `embedding`."""
    parsed: EmbeddingBody = validate(EmbeddingBody, body)
    params = {k: v for k, v in body.items() if k in allowed and v is not None}
    return ChatRequest(messages=[{"role": "user", "content": _payload_text(parsed.input)}], params=params,
                       kind="embedding", payload=parsed.input, encoding_format=parsed.encoding_format)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
