"""/metrics: the gateway's own series plus the instrumentator's, per app, labels from config only."""

from __future__ import annotations

import httpx

from tests.integration.test_quality_pipeline import GOOD, REFUSAL, chat
from tests.support.servers import AGENT_KEY, PROVIDER_KEY


def scrape(server, path: str = "/metrics") -> str:
    response = httpx.get(server.url + path, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " ") or line == series:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_calls_escalations_and_validator_failures(make_gateway, fake):
    fake.set_behaviour("fake-fast", {"text": REFUSAL})
    fake.set_behaviour("fake-medium", {"text": GOOD})
    server = make_gateway()
    secret_prompt = "unique-prompt-marker-91c7 explain the handshake"
    assert chat(server, secret_prompt, model="gpt-4o").status_code == 200
    assert chat(server, "x", model="fake-fast").status_code == 200
    text = scrape(server)
    assert value(text, 'llm_gateway_requests_total{route="chat",status="approved",tier="medium"}') == 1
    assert value(text, 'llm_gateway_escalations_total{from_tier="fast",to_tier="medium"}') == 1
    assert value(text, 'llm_gateway_validation_failures_total{validator="refusal"}') >= 1
    assert value(text, 'llm_gateway_gate_verdicts_total{status="pending_review"}') == 1
    assert 'llm_gateway_overhead_seconds_count{route="/v1/chat/completions"}' in text
    assert 'llm_gateway_confidence_bucket{le="1.0",task_type="chat",tier="medium"}' in text
    assert 'llm_gateway_gate_threshold{band="approved"} 7.0' in text
    assert "llm_gateway_audit_queue_depth" in text and "llm_gateway_dependency_degraded" in text
    assert "http_request_duration_seconds" in text  # the instrumentator's series
    assert scrape(server, "/v1/metrics").count("llm_gateway_requests_total") >= 1
    for forbidden in ("unique-prompt-marker", "gpt-4o", PROVIDER_KEY, AGENT_KEY):
        assert forbidden not in text


def test_each_app_has_its_own_registry(make_gateway, fake):
    one = make_gateway()
    two = make_gateway()
    chat(one, "hello")
    assert value(scrape(one), 'llm_gateway_requests_total{route="chat",status="approved",tier="fast"}') == 1
    assert value(scrape(two), 'llm_gateway_requests_total{route="chat",status="approved",tier="fast"}') == 0


def test_provider_failures_and_fallbacks_are_counted(make_gateway, fake):
    from tests.integration.test_tiers_and_chain import ask, chain_config

    server = make_gateway(chain_config(fake.url))
    fake.set_behaviour("fake-cerebras", {"status": 429, "retry_after": 30})
    assert ask(server).status_code == 200
    text = scrape(server)
    assert value(text, 'llm_gateway_fallbacks_total{tier="external"}') == 1
    assert value(text, 'llm_gateway_provider_failures_total{deployment="fake-cerebras"}') == 1
    assert value(text, 'llm_gateway_cooldowns_total{deployment="fake-cerebras"}') == 1
    assert value(text, 'llm_gateway_provider_attempts_total{deployment="fake-groq",outcome="ok"}') == 1
