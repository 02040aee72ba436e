"""The gateway on a real model: real answers through every route, and the validators on real output.

SmolLM2-135M is fluent but weak, which is what these tests need: its good answers must pass the
pipeline, and its real failures (cut off at the token limit, looping, ignoring the label list)
must be scored low, escalated through the tiers and flagged, as a user of the gateway would see.
Prompts are short and answers small; temperature 0 and a fixed seed keep the answers stable.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.models import AuditLog
from tests.support.servers import AGENT_KEY, GatewayServer

pytestmark = pytest.mark.real_model

AUTH = {"Authorization": f"Bearer {AGENT_KEY}"}
STATUSES = {"approved", "warning", "pending_review"}
SAMPLING = {"temperature": 0, "seed": 42}


def audit_row(server: GatewayServer, request_id: str, timeout: float = 10.0) -> AuditLog:
    from store.db import session_factory

    sessions = session_factory(server.gateway.engine)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            row = session.scalars(select(AuditLog).where(AuditLog.request_id == request_id)).first()
            if row is not None:
                return row
        time.sleep(0.05)
    raise AssertionError(f"no audit row for {request_id}")


def openai_client(server: GatewayServer) -> Any:
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=AGENT_KEY, max_retries=0, timeout=90)


def legacy(server: GatewayServer, route: str, body: dict[str, Any]) -> httpx.Response:
    response = httpx.post(server.url + route, json=body, headers=AUTH, timeout=90)
    assert response.status_code == 200, response.text
    return response


# -- real answers through the OpenAI routes -------------------------------------------------------


def test_chat_answers_through_the_openai_sdk(real_gateway: GatewayServer) -> None:
    raw = openai_client(real_gateway).chat.completions.with_raw_response.create(
        model="fast", messages=[{"role": "user", "content": "Name three primary colors."}], max_tokens=40, **SAMPLING
    )
    answer = raw.parse()
    text = answer.choices[0].message.content or ""
    assert any(color in text.lower() for color in ("red", "blue", "yellow")), text
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert raw.headers["x-gateway-tier"] == "fast"
    assert raw.headers["x-gateway-model"] == "smollm2@fast"
    assert raw.headers["x-gateway-status"] in STATUSES


def test_chat_streams_through_the_openai_sdk(real_gateway: GatewayServer) -> None:
    stream = openai_client(real_gateway).chat.completions.create(
        model="large", messages=[{"role": "user", "content": "Say hello to Alice in one short sentence."}],
        max_tokens=30, stream=True, stream_options={"include_usage": True}, **SAMPLING,
    )
    deltas, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            deltas.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    text = "".join(deltas)
    assert len(deltas) > 3 and text.strip(), deltas  # streamed token by token, not one blob
    assert "alice" in text.lower(), text
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0


def test_json_mode_answer_is_valid_json_and_approved(real_gateway: GatewayServer) -> None:
    raw = openai_client(real_gateway).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Return a JSON object with keys name and age for Alice, 30."}],
        response_format={"type": "json_object"}, max_tokens=60, **SAMPLING,
    )
    data = json.loads(raw.parse().choices[0].message.content or "")
    assert data["name"] == "Alice" and data["age"] == 30
    assert raw.headers["x-gateway-status"] == "approved"
    assert raw.headers["x-gateway-tier"] == "fast"  # a good cheap answer is kept, not escalated


# -- the legacy routes ---------------------------------------------------------------------------

LEGACY_CASES = {
    "summarization": (
        "The city council of Springfield met on Tuesday to discuss the new budget. Mayor Jane Smith proposed "
        "a 5% increase in funding for public schools, while councilman Bob Jones argued for more money for road "
        "repairs. After three hours of debate, the council approved a compromise: a 3% increase for schools and "
        "$2 million for roads. The budget takes effect on July 1.",
        "en",
    ),
    "translation": ("Good morning, how are you?", "de"),
    "code_generation": ("Write a Python function that reverses a string.", "en"),
    "chat": ("What is the capital of France?", "en"),
}


@pytest.mark.parametrize("task_type", sorted(LEGACY_CASES))
def test_legacy_completion_answers_each_task_type(real_gateway: GatewayServer, task_type: str) -> None:
    text, language = LEGACY_CASES[task_type]
    response = legacy(real_gateway, "/v1/completion", {"caller": "ci", "task_type": task_type, "input": text,
                                                       "language": language, "max_tokens": 120})
    answer = response.json()
    assert set(answer) == {"id", "status", "confidence", "model", "task_type", "latency_ms", "tokens", "output"}
    assert answer["task_type"] == task_type
    assert answer["status"] in STATUSES
    assert 0 <= answer["confidence"] <= 10
    assert answer["model"].startswith("smollm2@")
    assert answer["output"].strip()
    assert answer["tokens"]["in"] > 0 and answer["tokens"]["out"] > 0
    assert response.headers["x-gateway-status"] == answer["status"]


def test_legacy_code_generation_is_real_code_and_approved(real_gateway: GatewayServer) -> None:
    answer = legacy(real_gateway, "/v1/completion", {"task_type": "code_generation", "max_tokens": 150,
                                                     "input": "Write a Python function that reverses a string."}).json()
    assert "def " in answer["output"] and "```" in answer["output"]
    assert answer["status"] == "approved", answer
    row = audit_row(real_gateway, answer["id"])
    assert row.validator_scores["code_syntax"] == 10.0  # the code block parses


def test_classify_gives_a_label_or_flags_the_answer(real_gateway: GatewayServer) -> None:
    labels = ["positive", "negative"]
    flagged = 0
    for text in ("I love this product, it works great!", "This is broken and support never answered."):
        answer = legacy(real_gateway, "/v1/classify", {"input": text, "labels": labels}).json()
        assert set(answer) == {"id", "label", "confidence", "status", "model", "latency_ms", "tokens"}
        assert answer["status"] in STATUSES and 0 <= answer["confidence"] <= 10
        assert answer["label"] in labels or answer["label"] is None
        if answer["label"] is None:
            # The model chatted back instead of naming a label ("I'm glad to know that your product is
            # indeed great!"): scored 0 by the classification validator, escalated, never approved.
            flagged += 1
            assert answer["status"] != "approved", answer
            row = audit_row(real_gateway, answer["id"])
            assert row.validator_scores["classification"] == 0.0
            assert [step["tier"] for step in row.steps] == ["fast", "medium", "large"]
    assert flagged >= 1  # this model does not follow the label list on the first text (seen at temperature 0)


# -- broken real output is scored low and escalated --------------------------------------------


def test_answer_cut_at_the_token_limit_is_escalated_and_flagged(real_gateway: GatewayServer) -> None:
    raw = openai_client(real_gateway).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Explain how a hash table works."}], max_tokens=5,
        extra_headers={"x-task-type": "chat"}, **SAMPLING,
    )
    answer = raw.parse()
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 5
    assert raw.headers["x-gateway-tier"] == "large"  # fast -> medium -> large: every tier cut it off
    assert "escalated to medium" in raw.headers["x-gateway-route-reason"]
    assert raw.headers["x-gateway-status"] == "pending_review"
    row = audit_row(real_gateway, raw.headers["x-request-id"])
    assert [step["tier"] for step in row.steps] == ["fast", "medium", "large"]
    assert all(step["score"] < 5 for step in row.steps)
    assert row.validator_scores["truncation"] == 1.0
    assert row.escalations == 2


def test_degenerate_loop_is_scored_low_and_escalated(real_gateway: GatewayServer) -> None:
    # SmolLM2 cannot translate this into French: it loops "je suis vite et je suis vite et ..."
    answer = legacy(real_gateway, "/v1/completion", {
        "task_type": "translation", "language": "fr", "max_tokens": 60,
        "input": "The weather is nice today and we are going to the park.",
    }).json()
    assert answer["status"] == "pending_review", answer
    row = audit_row(real_gateway, answer["id"])
    assert row.validator_scores["repetition"] <= 3.0, row.validator_scores
    assert row.validator_scores["language"] == 10.0  # it is French, just not a translation
    assert [step["tier"] for step in row.steps] == ["fast", "medium", "large"]


def test_text_completion_is_served_by_the_model(real_gateway: GatewayServer) -> None:
    raw = openai_client(real_gateway).completions.with_raw_response.create(
        model="fast", prompt="def add(a, b):\n", max_tokens=24, **SAMPLING)
    answer = raw.parse()
    assert answer.choices[0].text.strip()
    assert answer.usage.completion_tokens > 0
    assert raw.headers["x-gateway-model"] == "smollm2@fast"


# -- what the validators do not see yet (found on this model; strict: a fix must flip them) --------


@pytest.mark.xfail(strict=True, reason="no validator checks a translation's meaning: a fluent wrong one is approved")
def test_a_wrong_translation_is_not_approved(real_gateway: GatewayServer) -> None:
    # "I would like to order a coffee with milk" -> "¿Puedes ayudarme a un café con la manzana?" (apple)
    answer = legacy(real_gateway, "/v1/completion", {
        "task_type": "translation", "language": "es", "max_tokens": 60,
        "input": "I would like to order a coffee with milk, please.",
    }).json()
    assert "manzana" in answer["output"]  # the mistranslation is what the model says at temperature 0
    assert answer["status"] != "approved"


@pytest.mark.xfail(strict=True, reason="numbered lines keep the repetition windows diverse: a list loop scores 10")
def test_a_looping_numbered_list_is_caught_by_the_repetition_validator(real_gateway: GatewayServer) -> None:
    # "1. Monday ... 7. Sunday 8. Monday 9. Tuesday ...": only the truncation validator notices (token limit).
    raw = openai_client(real_gateway).chat.completions.with_raw_response.create(
        model="fast", messages=[{"role": "user", "content": "List the days of the week."}], max_tokens=120,
        **SAMPLING)
    assert "8. Monday" in (raw.parse().choices[0].message.content or "")
    row = audit_row(real_gateway, raw.headers["x-request-id"])
    assert row.validator_scores["repetition"] < 7
