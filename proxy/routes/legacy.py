"""The legacy in-house routes, exactly as existing callers use them.

    POST /v1/completion {caller, task_type, input, language, [model|tier, max_tokens, system]}
      -> {id, status, confidence, model, task_type, latency_ms, tokens: {in, out}, output}
    POST /v1/classify {caller, input, labels, [task, language]}
      -> {id, label, confidence, status, model, latency_ms, tokens: {in, out}}

Both wrap the input in the task type's prompt and go through the same pipeline as chat
completions (tier selection, cascade, gate, audit). The body's `caller` is the in-house caller's
own label; the authenticated key decides who is calling, and the label is kept beside it.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from core.errors import InvalidRequest
from core.types import ChatRequest
from plugins.base import CallContext, CallResult
from plugins.tasks import language_name
from proxy.schemas import OpenModel, validate
from proxy.services import Admission

from .common import admitted_body, gateway_of, run_pipeline

router = APIRouter()


class CompletionRequest(OpenModel):
    caller: str | None = Field(default=None, max_length=200)
    task_type: str = Field(min_length=1)
    input: str = Field(min_length=1)
    language: str | None = Field(default=None, max_length=20)
    model: str | None = None
    tier: str | None = None
    max_tokens: int | None = Field(default=None, gt=0, le=32_000)
    system: str | None = None


class ClassifyRequest(OpenModel):
    caller: str | None = Field(default=None, max_length=200)
    input: str = Field(min_length=1)
    labels: list[str] = Field(min_length=2, max_length=200)
    task: str | None = None
    language: str | None = Field(default=None, max_length=20)


def _caller_name(authenticated: str, label: str | None) -> str:
    return authenticated if not label or label == authenticated else f"{authenticated}:{label}"


async def _run(
    request: Request, admission: Admission, route: str, requested: str, chat: ChatRequest, label: str | None
) -> tuple[CallContext, CallResult, dict[str, str]]:
    ctx = gateway_of(request).context(request, admission, route, requested, chat)
    ctx.caller = _caller_name(admission.caller.name, label)
    result, headers = await run_pipeline(request, admission, ctx)
    return ctx, result, headers


def _body_schema(model: type[OpenModel]) -> dict[str, Any]:
    """OpenAPI request body for routes that read raw JSON (so bad input is our 400, not FastAPI's 422)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.post("/v1/completion", openapi_extra=_body_schema(CompletionRequest), operation_id="completion",
             summary="Run one task (code_generation, summarization, ...) through the gateway")
async def completion(request: Request) -> Response:
    gw = gateway_of(request)
    admission, body = await admitted_body(request)
    parsed: CompletionRequest = validate(CompletionRequest, body)
    task = gw.task_types.get(parsed.task_type)
    if task is None:
        raise InvalidRequest(
            f"unknown task_type '{parsed.task_type}'; known task types: {', '.join(sorted(gw.task_types))}",
            param="task_type",
        )
    system = parsed.system or task.prompt.format(language=language_name(parsed.language))
    params: dict[str, Any] = {}
    max_tokens = parsed.max_tokens or task.max_tokens
    if max_tokens:
        params["max_tokens"] = max_tokens
    chat = ChatRequest(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": parsed.input}],
        params=params,
        task_type=task.name,
        language=parsed.language,
    )
    requested = parsed.model or parsed.tier or "auto"
    ctx, result, headers = await _run(request, admission, "completion", requested, chat, parsed.caller)
    response = result.response
    assert response is not None
    answer = {
        "id": ctx.request_id,
        "status": result.status,
        "confidence": result.confidence,
        "model": result.served.model,
        "task_type": task.name,
        "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 1),
        "tokens": {"in": response.prompt_tokens, "out": response.completion_tokens},
        "output": response.text,
    }
    return Response(json.dumps(answer), media_type="application/json", headers=headers)


@router.post("/v1/classify", openapi_extra=_body_schema(ClassifyRequest), operation_id="classify",
             summary="Classify the input into one of the given labels")
async def classify(request: Request) -> Response:
    gw = gateway_of(request)
    admission, body = await admitted_body(request)
    parsed: ClassifyRequest = validate(ClassifyRequest, body)
    labels = [label.strip() for label in parsed.labels if label.strip()]
    if len(set(labels)) < 2:
        raise InvalidRequest("labels must hold at least two distinct, non-empty labels", param="labels")
    task = gw.task_types["classification"]
    system = f"{task.prompt}\nAllowed labels: {', '.join(labels)}." + (f"\nTask: {parsed.task}" if parsed.task else "")
    chat = ChatRequest(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": parsed.input}],
        params={"max_tokens": 20, "temperature": 0},
        task_type="classification",
        language=parsed.language,
        labels=labels,
    )
    ctx, result, headers = await _run(request, admission, "classify", "auto", chat, parsed.caller)
    response = result.response
    assert response is not None
    answer = {
        "id": ctx.request_id,
        "label": pick_label(response.text, labels),
        "confidence": result.confidence,
        "status": result.status,
        "model": result.served.model,
        "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 1),
        "tokens": {"in": response.prompt_tokens, "out": response.completion_tokens},
    }
    return Response(json.dumps(answer), media_type="application/json", headers=headers)


def pick_label(text: str, labels: list[str]) -> str | None:
    """The allowed label the answer names: an exact match, else the only label it mentions."""
    cleaned = text.strip().strip("\"'`.").strip().lower()
    by_lower = {label.lower(): label for label in labels}
    if cleaned in by_lower:
        return by_lower[cleaned]
    found = [label for label in labels if re.search(rf"(?<!\w){re.escape(label.lower())}(?!\w)", cleaned)]
    return found[0] if len(found) == 1 else None


