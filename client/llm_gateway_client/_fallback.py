"""The local fallback model: prompts built on this side, and Ollama's (or an OpenAI-compatible
server's) request and answer shapes. Pure functions; the clients only move the bytes.

`ollama_api="ollama"`: Ollama's native `POST /api/chat` with `stream: false`, answered by
`{"model", "message": {"content", "tool_calls"?}, "done_reason", "prompt_eval_count", "eval_count"}`;
OpenAI parameters are mapped to Ollama `options` (max_tokens -> num_predict, temperature, top_p,
seed, stop, penalties; `response_format: json_object` -> `format: "json"`); others are dropped.
`ollama_api="openai"`: `POST /v1/chat/completions` on any OpenAI-compatible local server
(llama.cpp, vLLM, LM Studio, Ollama's own /v1), parameters passed through.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ._config import ClientConfig

LANGUAGES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "ru": "Russian", "uk": "Ukrainian", "zh": "Chinese", "ja": "Japanese",
    "ko": "Korean", "tr": "Turkish", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish",
    "cs": "Czech",
}

# Short system prompts per task type (the gateway has longer ones; these only need to work offline).
TASK_PROMPTS = {
    "code_explanation": "Explain clearly what the given code does, for a developer new to it.",
    "code_generation": "Write correct, idiomatic, complete code for the request, in one fenced code block.",
    "code_review": "Review the given code: list concrete bugs, risks and improvements, most important first.",
    "analysis": "Analyse the input and give a structured, well-reasoned answer.",
    "summarization": "Summarize the input concisely, keeping its key facts, names and numbers.",
    "translation": "Translate the input into {language}. Output only the translation.",
    "extraction": "Extract the requested information. Answer with only the data, as JSON when asked for structure.",
    "chat": "You are a helpful assistant.",
    "agentic": "You are a capable assistant working with tools.",
}
GENERIC_PROMPT = "You are a helpful assistant. Do what the input asks."
CLASSIFY_PROMPT = "Classify the input. Answer with exactly one of the allowed labels and nothing else."


def language_name(code: str | None) -> str:
    if not code:
        return "the language of the input"
    return LANGUAGES.get(code.lower().split("-")[0], code)


def completion_messages(task_type: str, text: str, language: str | None, system: str | None) -> list[dict[str, Any]]:
    """The chat the local model gets for a `/v1/completion` call (`system` replaces the task prompt)."""
    if system is None:
        prompt = TASK_PROMPTS.get(task_type, GENERIC_PROMPT)
        if "{language}" not in prompt:
            prompt += " Answer in {language}."
        system = prompt.format(language=language_name(language))
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def classify_messages(text: str, labels: list[str], task: str | None) -> list[dict[str, Any]]:
    system = f"{CLASSIFY_PROMPT}\nAllowed labels: {', '.join(labels)}." + (f"\nTask: {task}" if task else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def pick_label(text: str, labels: list[str]) -> str | None:
    """The allowed label the answer names: an exact match, else the only label it mentions."""
    cleaned = text.strip().strip("\"'`.").strip().lower()
    by_lower = {label.lower(): label for label in labels}
    if cleaned in by_lower:
        return by_lower[cleaned]
    found = [label for label in labels if re.search(rf"(?<!\w){re.escape(label.lower())}(?!\w)", cleaned)]
    return found[0] if len(found) == 1 else None


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The conversation as plain text, for the offline audit record."""
    return "\n".join(f"{m.get('role', '?')}: {_text(m.get('content'))}" for m in messages)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


# -- requests -------------------------------------------------------------------------------------

_OPTION_NAMES = {"temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty"}


def _ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.get("role", "user"), "content": _text(message.get("content"))}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [{"function": {"name": c["function"]["name"],
                                           "arguments": _arguments(c["function"].get("arguments"))}}
                             for c in calls if isinstance(c, dict) and isinstance(c.get("function"), dict)]
    for key in ("tool_call_id", "name", "images"):
        if key in message:
            out[key] = message[key]
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw or "{}")
        except ValueError:
            return {}
    return raw or {}


def local_headers(config: ClientConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.ollama_api_key}"} if config.ollama_api_key else {}


def local_request(
    config: ClientConfig, messages: list[dict[str, Any]], params: dict[str, Any], tools: list[dict[str, Any]] | None
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(url, JSON body, headers) of one non-streamed call to the local model."""
    headers = local_headers(config)
    if config.ollama_api == "openai":
        body = {**params, "model": config.ollama_model, "messages": messages, "stream": False}
        body.pop("stream_options", None)
        if tools:
            body["tools"] = tools
        return config.ollama_url + "/v1/chat/completions", body, headers
    options = {name: value for name, value in params.items() if name in _OPTION_NAMES and value is not None}
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if max_tokens:
        options["num_predict"] = max_tokens
    native: dict[str, Any] = {"model": config.ollama_model, "messages": [_ollama_message(m) for m in messages],
                              "stream": False}
    if options:
        native["options"] = options
    if tools:
        native["tools"] = tools
    response_format = params.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        native["format"] = response_format.get("json_schema", {}).get("schema") or "json"
    return config.ollama_url + "/api/chat", native, headers


def status_url(config: ClientConfig) -> str:
    """A cheap GET that answers 200 when the local server is up."""
    return config.ollama_url + ("/v1/models" if config.ollama_api == "openai" else "/api/tags")


# -- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    model: str
    content: str
    finish_reason: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # OpenAI shape
    tokens_in: int = 0
    tokens_out: int = 0


class LocalModelError(Exception):
    """The local model's answer was an error or unreadable; the message says what to do."""


def parse_local(config: ClientConfig, status: int, body: bytes) -> LocalAnswer:
    where = f"{config.ollama_api} at {config.ollama_url}, model {config.ollama_model}"
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if status != 200:
        message = _error_text(data) or body[:200].decode("utf-8", "replace")
        hint = ""
        if status == 404 and config.ollama_api == "ollama":
            hint = f"; pull the model with `ollama pull {config.ollama_model}` or set OLLAMA_MODEL"
        elif status in (401, 403):
            hint = "; check OLLAMA_API_KEY"
        raise LocalModelError(f"the local model ({where}) answered {status}: {message}{hint}")
    if not isinstance(data, dict):
        raise LocalModelError(f"the local model ({where}) sent an answer that is not a JSON object")
    if config.ollama_api == "openai":
        return _openai_answer(config, data, where)
    reply = data.get("message")
    if not isinstance(reply, dict):
        raise LocalModelError(f"the local model ({where}) sent no 'message'; is OLLAMA_URL an Ollama server?")
    calls = [
        {"id": f"call_{i}", "type": "function",
         "function": {"name": c["function"].get("name", ""), "arguments": json.dumps(c["function"].get("arguments"))}}
        for i, c in enumerate(reply.get("tool_calls") or [])
        if isinstance(c, dict) and isinstance(c.get("function"), dict)
    ]
    reason = "tool_calls" if calls else str(data.get("done_reason") or "stop")
    return LocalAnswer(model=str(data.get("model") or config.ollama_model), content=str(reply.get("content") or ""),
                       finish_reason=reason, tool_calls=calls, tokens_in=_int(data.get("prompt_eval_count")),
                       tokens_out=_int(data.get("eval_count")))


def _openai_answer(config: ClientConfig, data: dict[str, Any], where: str) -> LocalAnswer:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LocalModelError(f"the local model ({where}) sent no choices")
    message = choices[0].get("message") or {}
    usage = data.get("usage") or {}
    return LocalAnswer(model=str(data.get("model") or config.ollama_model), content=str(message.get("content") or ""),
                       finish_reason=str(choices[0].get("finish_reason") or "stop"),
                       tool_calls=list(message.get("tool_calls") or []),
                       tokens_in=_int(usage.get("prompt_tokens")), tokens_out=_int(usage.get("completion_tokens")))


def _error_text(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def chat_body(answer: LocalAnswer, request_id: str, created: int) -> dict[str, Any]:
    """The OpenAI `chat.completion` body for a local answer, so callers see one shape."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    return {
        "id": request_id, "object": "chat.completion", "created": created, "model": answer.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason}],
        "usage": {"prompt_tokens": answer.tokens_in, "completion_tokens": answer.tokens_out,
                  "total_tokens": answer.tokens_in + answer.tokens_out},
    }


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole local answer replayed as OpenAI `chat.completion.chunk`s (content, then the end)."""
    choice = body["choices"][0]
    delta: dict[str, Any] = {"role": "assistant", "content": choice["message"].get("content") or ""}
    if choice["message"].get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(choice["message"]["tool_calls"])]
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"], "model": body["model"]}
    return [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
         "usage": body["usage"]},
    ]
