"""What the fake upstream answers, and how that is chosen for one request.

A :class:`Behaviour` is plain data parsed once (when a script is loaded, or a test calls
``set_behaviour``/``enqueue``) so the per-request cost is a few dict lookups. Unknown keys
are rejected: a typo in a test script should fail loudly, not silently answer "stop".

Selection order for a request (first match wins, no merging between sources):

1. an in-prompt directive ``[[fake:{...json...}]]`` in the last user message (or the prompt
   of a completion / embedding input), so tests can drive behaviour *through* the gateway,
   which forwards only messages;
2. the one-shot queue of the model (``enqueue``), FIFO, then the queue of ``"*"``;
3. the per-model behaviour (``set_behaviour`` or the script's ``models``), then ``"*"``;
4. the script's ``default``;
5. the built-in default (:data:`DEFAULT_BEHAVIOUR`).

Script file (YAML or JSON)::

    default: {latency_ms: 20}
    models:
      qwen2.5:7b: {text: "local answer {n}"}
      "*": {tokens_per_s: 200}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

DIRECTIVE_OPEN = "[[fake:"
DIRECTIVE_CLOSE = "]]"
DEFAULT_TEXT = "This is a fake answer from {model}."
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    """A scripted tool call; ``arguments_json`` and ``arguments`` are both precomputed."""

    name: str
    arguments_json: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One scripted answer. Every field is optional; the defaults give a fast, normal answer.

    ``latency_ms=None`` means "the server-wide default latency" (``--latency-ms``, 0 otherwise).
    ``stall_after_chunks`` / ``drop_after_chunks`` count streamed body chunks (content words
    groups and tool-call pieces); after a stall of ``stall_s`` the stream resumes.
    """

    text: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    finish_reason: str | None = None
    latency_ms: float | None = None
    tokens_per_s: float = 0.0
    chunk_words: int = 1
    status: int | None = None
    retry_after: float | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False
    drop_after_chunks: int | None = None
    stall_after_chunks: int | None = None
    stall_s: float = 3600.0
    malformed_json: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    embedding_dim: int = 8

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Behaviour:
        """Parse and validate a behaviour mapping (raises ``ValueError`` on bad input)."""
        if data is None:
            return DEFAULT_BEHAVIOUR
        if not isinstance(data, dict):
            raise ValueError(f"behaviour must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - _FIELD_NAMES
        if unknown:
            raise ValueError(f"unknown behaviour field(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = dict(data)
        if "tool_calls" in kwargs:
            kwargs["tool_calls"] = tuple(_tool_call(tc) for tc in kwargs["tool_calls"] or ())
        if "headers" in kwargs:
            kwargs["headers"] = {str(k): str(v) for k, v in (kwargs["headers"] or {}).items()}
        if kwargs.get("chunk_words", 1) < 1:
            raise ValueError("chunk_words must be >= 1")
        if kwargs.get("embedding_dim", 8) < 1:
            raise ValueError("embedding_dim must be >= 1")
        return cls(**kwargs)


_FIELD_NAMES = frozenset(f.name for f in fields(Behaviour))
DEFAULT_BEHAVIOUR = Behaviour()


def _tool_call(spec: Any) -> ToolCallSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError("each tool call needs a 'name' string")
    args = spec.get("arguments", {})
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except ValueError:
            parsed = {}
        return ToolCallSpec(spec["name"], args, parsed if isinstance(parsed, dict) else {}, spec.get("id"))
    if not isinstance(args, dict):
        raise ValueError("tool call 'arguments' must be an object or a JSON string")
    return ToolCallSpec(spec["name"], json.dumps(args), args, spec.get("id"))


@dataclass(frozen=True, slots=True)
class Script:
    """A parsed script file: the default behaviour and the initial per-model behaviours."""

    default: Behaviour = DEFAULT_BEHAVIOUR
    models: dict[str, Behaviour] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Script:
        if not data:
            return cls()
        unknown = set(data) - {"default", "models"}
        if unknown:
            raise ValueError(f"unknown script key(s): {', '.join(sorted(unknown))}")
        models = {str(name): Behaviour.from_dict(b) for name, b in (data.get("models") or {}).items()}
        return cls(Behaviour.from_dict(data.get("default")), models)


def load_script(path: str | Path) -> dict[str, Any]:
    """Read a script file: JSON when it ends in ``.json``, YAML otherwise."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"script {path} must be a mapping")
    return data


def extract_directive(text: str) -> tuple[dict[str, Any] | None, str]:
    """Find ``[[fake:{...}]]`` in ``text``; return (the JSON object or None, text without it).

    The JSON is decoded with ``raw_decode`` so that ``]]`` inside the object is harmless.
    Raises ``ValueError`` when the directive is present but not a JSON object.
    """
    start = text.find(DIRECTIVE_OPEN)
    if start < 0:
        return None, text
    begin = start + len(DIRECTIVE_OPEN)
    while begin < len(text) and text[begin].isspace():
        begin += 1
    try:
        obj, end = _DECODER.raw_decode(text, begin)
    except ValueError as exc:
        raise ValueError(f"bad [[fake:...]] directive: {exc}") from None
    while end < len(text) and text[end].isspace():
        end += 1
    if not isinstance(obj, dict) or not text.startswith(DIRECTIVE_CLOSE, end):
        raise ValueError("bad [[fake:...]] directive: expected [[fake:{...}]]")
    return obj, (text[:start] + text[end + len(DIRECTIVE_CLOSE) :]).strip()
