"""Cascade, gate, audit and the legacy routes over real HTTP, with fake tiers that answer badly then well."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from store.models import AuditLog
from tests.support.servers import AGENT_KEY

REFUSAL = "I'm sorry, but I can't help with that request."
GOOD = (
    "A TCP connection starts with a three-way handshake: the client sends SYN, the server answers "
    "SYN-ACK, and the client confirms with ACK. After that both sides can exchange data."
)
AUTH = {"Authorization": f"Bearer {AGENT_KEY}"}


def audit_row(server: Any, request_id: str, timeout: float = 5.0) -> AuditLog:
    deadline = time.monotonic() + timeout
    from store.db import session_factory

    sessions = session_factory(server.gateway.engine)
    while time.monotonic() < deadline:
        with sessions() as session:
            row = session.scalars(select(AuditLog).where(AuditLog.request_id == request_id)).first()
            if row is not None:
                return row
        time.sleep(0.05)
    raise AssertionError(f"no audit row for {request_id}")


def chat(server: Any, content: str, model: str = "auto", **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=15)


def test_bad_cheap_answer_escalates_and_every_step_is_recorded(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": REFUSAL})
    fake.set_behaviour("fake-medium", {"text": GOOD})
    server = make_gateway()
    response = chat(server, "Explain how the TCP handshake works.")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == GOOD
    assert response.headers["x-gateway-tier"] == "medium"
    assert response.headers["x-gateway-model"] == "fake-medium"
    assert response.headers["x-gateway-status"] == "approved"
    assert float(response.headers["x-gateway-confidence"]) >= 7
    assert "escalated to medium" in response.headers["x-gateway-route-reason"]

    row = audit_row(server, response.headers["x-request-id"])
    assert row.escalations == 1 and row.tier == "medium" and row.status == "approved"
    assert [step["tier"] for step in row.steps] == ["fast", "medium"]
    assert row.steps[0]["score"] < 5 <= row.steps[1]["score"]
    assert all(step["cost"] > 0 and step["latency_ms"] >= 0 for step in row.steps)
    assert row.cost == pytest.approx(sum(step["cost"] for step in row.steps))
    assert row.validator_scores["refusal"] == 10.0


def test_good_cheap_answer_is_kept(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": GOOD})
    server = make_gateway()
    response = chat(server, "Explain how the TCP handshake works.")
    assert response.headers["x-gateway-tier"] == "fast"
    assert response.headers["x-gateway-status"] == "approved"
    assert len(fake.requests_to("/chat/completions")) == 1


def test_budget_stops_the_cascade_and_returns_the_best_answer(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": ""})
    fake.set_behaviour("fake-medium", {"text": REFUSAL})
    fake.set_behaviour("fake-large", {"text": ""})
    server = make_gateway(quality={"max_escalations": 2})
    response = chat(server, "Explain how the TCP handshake works.")
    assert response.json()["choices"][0]["message"]["content"] == REFUSAL  # the best of three bad answers
    assert response.headers["x-gateway-status"] == "pending_review"
    assert [r.model for r in fake.requests_to("/chat/completions")] == ["fake-fast", "fake-medium", "fake-large"]
    row = audit_row(server, response.headers["x-request-id"])
    assert row.escalations == 2 and row.status == "pending_review"


def test_named_model_is_scored_but_never_escalated(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": REFUSAL})
    server = make_gateway()
    response = chat(server, "Explain how the TCP handshake works.", model="fake-fast")
    assert response.headers["x-gateway-status"] == "pending_review"
    assert len(fake.requests_to("/chat/completions")) == 1


def test_task_type_header_picks_the_assigned_tier(make_gateway):
    server = make_gateway()
    response = httpx.post(
        server.url + "/v1/chat/completions",
        headers={**AUTH, "x-task-type": "code_generation"},
        json={"model": "auto", "messages": [{"role": "user", "content": "hello"}]},
        timeout=15,
    )
    assert response.headers["x-gateway-tier"] == "medium"
    assert "code_generation" in response.headers["x-gateway-route-reason"]
    unknown = httpx.post(
        server.url + "/v1/chat/completions",
        headers={**AUTH, "x-task-type": "poetry"},
        json={"model": "auto", "messages": [{"role": "user", "content": "hello"}]},
        timeout=15,
    )
    assert unknown.status_code == 400 and "code_generation" in unknown.json()["error"]["message"]


def test_inferred_task_type_routes_tools_to_large(make_gateway):
    server = make_gateway()
    tools = [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]
    response = chat(server, "Do the thing", tools=tools)
    assert response.headers["x-gateway-tier"] == "large"


def test_session_is_pinned_to_the_tier_it_escalated_to(make_gateway, fake):
    server = make_gateway()
    fake.enqueue("fake-fast", {"text": REFUSAL})
    fake.set_behaviour("fake-medium", {"text": GOOD})
    headers = {**AUTH, "x-session-id": "agent-session-1"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "Explain the handshake."}]}
    first = httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers, timeout=15)
    assert first.headers["x-gateway-tier"] == "medium"
    second = httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers, timeout=15)
    assert second.headers["x-gateway-tier"] == "medium" and "pinned" in second.headers["x-gateway-route-reason"]
    other = httpx.post(
        server.url + "/v1/chat/completions", json=body, headers={**AUTH, "x-session-id": "s2"}, timeout=15
    )
    assert other.headers["x-gateway-tier"] == "fast"


def _sse(response: httpx.Response) -> list[dict]:
    events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_stream_is_buffered_while_it_may_escalate_then_replayed(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": REFUSAL})
    fake.set_behaviour("fake-medium", {"text": GOOD})
    server = make_gateway()
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Explain the handshake."}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=15) as response:
        assert response.headers["x-gateway-tier"] == "medium"
        assert response.headers["x-gateway-status"] == "approved"
        chunks = _sse(response)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == GOOD
    # the cheap tier was asked without streaming (buffered), nothing of its answer reached the client
    assert fake.requests_to("/chat/completions")[0].body.get("stream") in (None, False)


def test_last_tier_streams_straight_through_and_is_scored_at_the_end(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": GOOD})
    server = make_gateway(quality={"max_escalations": 0})
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Explain the handshake."}]}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=15) as response:
        chunks = _sse(response)
        request_id = response.headers["x-request-id"]
    assert fake.requests_to("/chat/completions")[0].body.get("stream") is True
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]).split() == GOOD.split()
    )
    row = audit_row(server, request_id)
    assert row.confidence is not None and row.confidence >= 7 and row.status == "approved"
    assert row.ttft_ms is not None


def test_failed_call_is_audited_as_error(make_gateway):
    server = make_gateway()
    response = chat(server, '[[fake:{"status": 500}]]', model="fake-fast")
    assert response.status_code == 502
    row = audit_row(server, response.headers["x-request-id"])
    assert row.status == "error" and row.error_class == "upstream_error"


# --- legacy routes -----------------------------------------------------------------------------------

COMPLETION_KEYS = {"id", "status", "confidence", "model", "task_type", "latency_ms", "tokens", "output"}
CLASSIFY_KEYS = {"id", "label", "confidence", "status", "model", "latency_ms", "tokens"}


def test_legacy_completion_schema_and_prompt(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": "The function returns the sum of its two arguments."})
    server = make_gateway()
    response = httpx.post(
        server.url + "/v1/completion",
        headers=AUTH,
        timeout=15,
        json={
            "caller": "ci-bot",
            "task_type": "code_explanation",
            "input": "def add(a, b):\n    return a + b",
            "language": "en",
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == COMPLETION_KEYS
    assert answer["output"] == "The function returns the sum of its two arguments."
    assert answer["status"] in ("approved", "warning", "pending_review")
    assert isinstance(answer["confidence"], float) and 0 <= answer["confidence"] <= 10
    assert answer["task_type"] == "code_explanation" and answer["model"] == "fake-fast"
    assert answer["tokens"]["in"] > 0 and answer["tokens"]["out"] > 0 and answer["latency_ms"] > 0
    sent = fake.requests_to("/chat/completions")[-1].body["messages"]
    assert sent[0]["role"] == "system" and "Explain" in sent[0]["content"] and "English" in sent[0]["content"]
    row = audit_row(server, answer["id"])
    assert row.caller == "agent:ci-bot" and row.route == "completion" and row.task_type == "code_explanation"


def test_legacy_completion_routes_by_task_type_and_honours_tier(make_gateway):
    server = make_gateway()
    post = lambda body: httpx.post(server.url + "/v1/completion", headers=AUTH, json=body, timeout=15)  # noqa: E731
    assert post({"task_type": "code_generation", "input": "write a sort"}).headers["x-gateway-tier"] == "medium"
    assert post({"task_type": "chat", "input": "hi", "tier": "large"}).headers["x-gateway-tier"] == "large"
    unknown = post({"task_type": "poetry", "input": "hi"})
    assert unknown.status_code == 400
    assert all(name in unknown.json()["error"]["message"] for name in ("summarization", "translation", "chat"))
    assert post({"input": "hi"}).status_code == 400


def test_legacy_classify_schema_and_label(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": "Negative"})
    server = make_gateway()
    response = httpx.post(
        server.url + "/v1/classify",
        headers=AUTH,
        timeout=15,
        json={
            "caller": "support",
            "input": "The update broke my build and support never answered.",
            "labels": ["positive", "negative", "neutral"],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == CLASSIFY_KEYS
    assert answer["label"] == "negative"
    assert answer["status"] == "approved"
    sent = fake.requests_to("/chat/completions")[-1].body["messages"][0]["content"]
    assert "positive, negative, neutral" in sent


def test_legacy_classify_with_an_unlisted_label_is_flagged(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": "It sounds rather frustrated to me, honestly."})
    fake.set_behaviour("fake-medium", {"text": "frustrated"})
    fake.set_behaviour("fake-large", {"text": "angry"})
    server = make_gateway()
    answer = httpx.post(
        server.url + "/v1/classify",
        headers=AUTH,
        timeout=15,
        json={"input": "The update broke my build.", "labels": ["positive", "negative"]},
    ).json()
    assert answer["label"] is None and answer["status"] != "approved"


def test_openapi_schema_describes_the_legacy_routes_for_actions(make_gateway):
    server = make_gateway(public_url="https://gateway.example.internal")
    schema = httpx.get(server.url + "/openapi.json", timeout=10).json()
    assert schema["servers"] == [{"url": "https://gateway.example.internal"}]
    body = schema["paths"]["/v1/completion"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"task_type", "input"} <= set(body["required"]) and "language" in body["properties"]
    assert schema["paths"]["/v1/completion"]["post"]["operationId"] == "completion"


def test_a_share_of_approved_answers_is_spot_checked_by_reviewers(make_gateway, fake):
    from store.db import session_factory
    from store.models import ReviewItem

    fake.set_behaviour("fake-fast", {"text": GOOD})
    server = make_gateway(audit={"spot_check_share": 1.0})
    response = chat(server, "Explain how the TCP handshake works.")
    assert response.headers["x-gateway-status"] == "approved"
    row = audit_row(server, response.headers["x-request-id"])
    assert row.spot_check and row.status == "approved"
    assert row.output == GOOD  # kept for the reviewer under the default review_only policy
    with session_factory(server.gateway.engine)() as session:
        item = session.query(ReviewItem).filter_by(audit_id=row.id).one()
    assert item.state == "pending"
