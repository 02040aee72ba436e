"""Rows -> what the templates show: a review item with its audit record, read for a person."""

from __future__ import annotations

import json
from typing import Any

from store.models import AuditLog, ReviewItem


def _text(content: Any) -> str:
    """A message's content as text (OpenAI content parts joined; other parts as JSON)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(json.dumps(part, indent=2))
        return "\n".join(parts)
    return json.dumps(content, indent=2)


def messages_view(audit: AuditLog) -> list[dict[str, Any]]:
    if audit.prompt_json and audit.prompt_json.get("messages") is not None:
        out = []
        for message in audit.prompt_json["messages"]:
            if not isinstance(message, dict):
                continue
            calls = message.get("tool_calls")
            out.append({"role": str(message.get("role", "?")), "text": _text(message.get("content")),
                        "tool_calls": json.dumps(calls, indent=2) if calls else None,
                        "name": message.get("name") or message.get("tool_call_id")})
        return out
    if audit.prompt:
        return [{"role": "prompt", "text": audit.prompt, "tool_calls": None, "name": None}]
    return []


def tools_view(audit: AuditLog) -> list[dict[str, Any]]:
    tools = (audit.prompt_json or {}).get("tools") or []
    out = []
    for tool in tools:
        fn = tool.get("function", tool) if isinstance(tool, dict) else {}
        out.append({"name": fn.get("name", "?"), "description": fn.get("description", ""),
                    "parameters": json.dumps(fn.get("parameters", {}), indent=2)})
    return out


def checks_view(audit: AuditLog) -> list[dict[str, Any]]:
    if audit.checks:
        return [dict(c) for c in audit.checks if isinstance(c, dict)]
    return [{"name": name, "score": score, "passed": None, "reason": "", "abstained": False}
            for name, score in (audit.validator_scores or {}).items()]


def row_summary(item: ReviewItem) -> dict[str, Any]:
    return {"id": item.id, "request_id": item.request_id, "state": item.state, "verdict": item.verdict,
            "reviewer": item.reviewer, "notes": item.notes, "corrected_output": item.corrected_output,
            "updated_at": item.updated_at.isoformat()}


def item_view(item: ReviewItem, audit: AuditLog | None) -> dict[str, Any]:
    view: dict[str, Any] = {"item": item, "audit": audit, "kind": "spot check" if item.spot_check else "pending review",
                            "messages": [], "tools": [], "checks": [], "steps": [], "attempts": [],
                            "content_stored": False}
    if audit is not None:
        view.update(messages=messages_view(audit), tools=tools_view(audit), checks=checks_view(audit),
                    steps=list(audit.steps or []), attempts=list(audit.attempts or []),
                    content_stored=audit.output is not None or audit.prompt is not None)
    return view
