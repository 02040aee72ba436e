"""Structured output: JSON mode / `response_format`, and tool calls against the offered tools.

Schemas are checked through a `SchemaCache` (see `schemas.py`) owned by the validator object: a
request with the same schema as an earlier one (the common case: a caller sends the same
`response_format` or tool list every time) pays one `json.dumps` of the schema for the cache key
and the validation itself, never the schema check or the validator construction.
"""

from __future__ import annotations

import json
from typing import Any

from core.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
from plugins.validators.schemas import SchemaCache, SchemaUnusable
from plugins.validators.text import analyze

_JSON_KINDS = frozenset({"json_object", "json_schema"})


def _parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} (line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return None, "nested too deeply"


class JsonModeValidator:
    """With `response_format` `json_object` the answer must be a JSON object; with `json_schema`
    it must parse and conform to the schema. JSON wrapped in a ```json fence fails softly (a
    client calling `json.loads` on the content still breaks). Abstains without a JSON format."""

    name = "json_mode"
    default_weight = 3.0

    def __init__(self, schemas: SchemaCache | None = None) -> None:
        self._schemas = schemas or SchemaCache()

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        response_format = request.response_format
        if not isinstance(response_format, dict) or response_format.get("type") not in _JSON_KINDS:
            return ValidatorResult.abstain(self.name, "no JSON response_format")
        kind = response_format["type"]
        text = response.text.strip()
        if not text:
            if response.tool_calls:
                return ValidatorResult.abstain(self.name, "tool-call answer")
            return ValidatorResult.of(self.name, 0.0, "empty answer where JSON was required")
        value, error = _parse_json(text)
        fenced = False
        if error is not None:
            blocks = analyze(response.text).blocks
            if len(blocks) == 1 and blocks[0].closed:
                fenced_value, fenced_error = _parse_json(blocks[0].code)
                if fenced_error is None:
                    value, error, fenced = fenced_value, None, True
        if error is not None:
            return ValidatorResult.of(self.name, 0.0, f"not valid JSON: {error}")
        schema = None
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict) and not isinstance(value, dict):
            kind_name = type(value).__name__
            return ValidatorResult.of(self.name, 3.0, f"valid JSON but a {kind_name}, not an object")
        if isinstance(schema, dict):
            try:
                mismatch = self._schemas.error(schema, value)
            except SchemaUnusable as exc:
                return ValidatorResult.abstain(self.name, str(exc))
            if mismatch is not None:
                return ValidatorResult.of(self.name, 2.0, f"JSON does not match the schema: {mismatch}")
        if fenced:
            return ValidatorResult.of(self.name, 4.0, "JSON is wrapped in a code fence, not bare")
        return ValidatorResult.of(self.name, 10.0, "valid JSON" + (" matching the schema" if schema else ""))


def _tool_index(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Offered function name -> its parameters schema (None when it has none)."""
    index: dict[str, Any] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            index[function["name"]] = function.get("parameters")
    return index


def _forced_function(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
    return None


class ToolCallValidator:
    """Checks tool calls against the request: each called tool was offered, its arguments parse as
    a JSON object and conform to the tool's parameter schema; `tool_choice` "required" or a named
    function must produce a (matching) call, "none" must produce none. Abstains when the request
    offers no tools and the answer calls none, or when tools were optional and went unused."""

    name = "tool_calls"
    default_weight = 3.0

    def __init__(self, schemas: SchemaCache | None = None) -> None:
        self._schemas = schemas or SchemaCache()

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        tools = request.tools or []
        calls = response.tool_calls
        tool_choice = request.params.get("tool_choice")
        forced = _forced_function(tool_choice)
        if not calls:
            if tools and tool_choice == "required":
                return ValidatorResult.of(self.name, 1.0, "tool_choice is 'required' but no tool was called")
            if tools and forced:
                return ValidatorResult.of(self.name, 1.0, f"tool_choice names {forced!r}; it was not called")
            return ValidatorResult.abstain(self.name, "no tool calls")
        if tool_choice == "none":
            return ValidatorResult.of(self.name, 2.0, "tool_choice is 'none' but the answer calls tools")
        if not tools:
            return ValidatorResult.of(self.name, 0.0, "the answer calls tools but none were offered")
        index = _tool_index(tools)
        worst = ValidatorResult.of(self.name, 10.0, f"{len(calls)} valid tool call(s)")
        for call in calls:
            verdict = self._check_call(call, index, forced)
            if verdict is not None and verdict.score < worst.score:
                worst = verdict
        return worst

    def _check_call(self, call: Any, index: dict[str, Any], forced: str | None) -> ValidatorResult | None:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            return ValidatorResult.of(self.name, 0.0, "malformed tool call (no function)")
        name = function.get("name")
        if not isinstance(name, str) or name not in index:
            offered = ", ".join(sorted(index))[:120]
            return ValidatorResult.of(self.name, 0.0, f"called unknown tool {name!r} (offered: {offered})")
        if forced and name != forced:
            return ValidatorResult.of(self.name, 2.0, f"tool_choice names {forced!r} but {name!r} was called")
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            if not arguments.strip():
                arguments = "{}"
            arguments, error = _parse_json(arguments)
            if error is not None:
                return ValidatorResult.of(self.name, 1.0, f"arguments of {name!r} are not JSON: {error}")
        if not isinstance(arguments, dict):
            return ValidatorResult.of(self.name, 1.0, f"arguments of {name!r} are not a JSON object")
        schema = index[name]
        if isinstance(schema, dict) and schema:
            try:
                mismatch = self._schemas.error(schema, arguments)
            except SchemaUnusable:
                return None
            if mismatch is not None:
                return ValidatorResult.of(self.name, 3.0, f"arguments of {name!r} do not match: {mismatch}")
        return None
