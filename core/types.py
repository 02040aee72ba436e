"""The protocol-neutral request and response that every route translates into and out of.

Routes speak OpenAI chat, legacy completion, Responses or Anthropic Messages on the wire; the
pipeline, the validators and the upstream adapter only ever see these two classes. Keeping them
small dataclasses (not pydantic models) matters: one of each is built per request on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# What the upstream is asked for. Every route goes through the one pipeline; the kind says which
# upstream call the innermost step makes (and whether there is an answer text to judge).
CallKind = Literal["chat", "completion", "embedding"]


def _content_text(content: Any) -> str:
    """Text of an OpenAI message `content`, which is a string, None, or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return str(content)


@dataclass(slots=True)
class ChatRequest:
    """One call as the pipeline sees it.

    `messages` are OpenAI chat messages. `params` holds only allowlisted OpenAI sampling and tool
    fields (temperature, top_p, max_tokens, stop, seed, n, user, tools, tool_choice,
    response_format, ...): the upstream adapter forwards exactly these, nothing from the raw body.
    `task_type`, `language` and `labels` are gateway hints that never go upstream.

    `kind` is `chat` for every chat-shaped route (chat, Responses, Messages, legacy). For
    `completion` and `embedding`, `payload` is the OpenAI `prompt` / `input` as sent, and
    `messages` holds its text as one user message (for task inference and the audit).
    """

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False
    task_type: str | None = None
    language: str | None = None
    labels: list[str] | None = None
    kind: CallKind = "chat"
    payload: Any = None
    encoding_format: str = "float"

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        return self.params.get("tools")

    @property
    def response_format(self) -> dict[str, Any] | None:
        return self.params.get("response_format")

    @property
    def max_tokens(self) -> int | None:
        value = self.params.get("max_tokens") or self.params.get("max_completion_tokens")
        return int(value) if value else None

    def prompt_text(self, roles: tuple[str, ...] = ("system", "user")) -> str:
        """The text of the messages with the given roles, joined by blank lines."""
        return "\n\n".join(_content_text(m.get("content")) for m in self.messages if m.get("role") in roles)

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""


@dataclass(slots=True)
class ChatResponse:
    """One answer from one tier, already in OpenAI's chat.completion shape (`body`).

    `text`, `tool_calls` and `finish_reason` are lifted out of the first choice so validators do
    not each re-walk the body. `tool_calls` use OpenAI's shape:
    `{"id", "type": "function", "function": {"name", "arguments": "<json string>"}}`.
    """

    text: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_completion(cls, body: dict[str, Any]) -> ChatResponse:
        """An OpenAI `text_completion` body: the first choice's `text` is the answer."""
        choices = body.get("choices") or [{}]
        first = choices[0] or {}
        usage = body.get("usage") or {}
        return cls(text=str(first.get("text") or ""), finish_reason=first.get("finish_reason"),
                   prompt_tokens=int(usage.get("prompt_tokens") or 0),
                   completion_tokens=int(usage.get("completion_tokens") or 0),
                   model=str(body.get("model") or ""), body=body)

    @classmethod
    def from_embedding(cls, body: dict[str, Any]) -> ChatResponse:
        """An OpenAI embeddings list: no text to judge, only the tokens it cost."""
        usage = body.get("usage") or {}
        return cls(text="", prompt_tokens=int(usage.get("prompt_tokens") or 0),
                   model=str(body.get("model") or ""), body=body)

    @classmethod
    def from_openai(cls, body: dict[str, Any]) -> ChatResponse:
        choices = body.get("choices") or [{}]
        first = choices[0] or {}
        message = first.get("message") or {}
        usage = body.get("usage") or {}
        return cls(
            text=_content_text(message.get("content")),
            tool_calls=list(message.get("tool_calls") or []),
            finish_reason=first.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            model=str(body.get("model") or ""),
            body=body,
        )
