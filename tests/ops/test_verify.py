"""`llm-gateway verify URL`: the post-deployment checks against a running gateway and the fake upstream."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from proxy.cli import main
from proxy.verify import learning_ages, unreachable_url
from tests.support.servers import AGENT_KEY


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, str], str]:
    code = main(["verify", *args, "--timeout", "15"])
    out = capsys.readouterr().out
    outcomes = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if parts and parts[0] in ("PASS", "FAIL", "SKIP"):
            outcomes[parts[1]] = parts[0]
    return code, outcomes, out


@pytest.fixture
def server(make_gateway: Any) -> Any:
    return make_gateway()


def test_a_healthy_deployment_passes(server: Any, fake: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, outcomes, out = verify(capsys, server.url, "--api-key", AGENT_KEY, "--ollama-url", fake.url)
    assert code == 0, out
    assert outcomes == {"health": "PASS", "completion": "PASS", "fallback": "PASS", "metrics": "PASS",
                        "learning": "SKIP"}, out
    assert "client SDK -> local model qwen2.5:7b" in out  # the SDK fell back, not a direct call
    assert fake.requests[-1].path == "/api/chat"
    assert out.rstrip().endswith("OK (4 passed, 1 skipped)")


def test_key_from_the_environment_and_no_local_model_is_a_skip(server: Any, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_GATEWAY_API_KEY", AGENT_KEY)
    monkeypatch.delenv("OLLAMA_URL", raising=False)
    code, outcomes, out = verify(capsys, server.url)
    assert code == 0, out
    assert outcomes["completion"] == "PASS" and outcomes["fallback"] == "SKIP"


def test_a_wrong_key_fails_the_completion(server: Any, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_GATEWAY_API_KEY", raising=False)
    code, outcomes, out = verify(capsys, server.url, "--api-key", "gw-wrong-key")
    assert code == 1
    assert outcomes["health"] == "PASS" and outcomes["completion"] == "FAIL"
    assert "HTTP 401" in out and "gw-wrong-key" not in out
    code, outcomes, out = verify(capsys, server.url)
    assert code == 1 and "no API key" in out


def test_an_unreachable_gateway_fails(fake: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, outcomes, out = verify(capsys, unreachable_url(), "--api-key", AGENT_KEY, "--ollama-url", fake.url)
    assert code == 1
    assert outcomes["health"] == "FAIL" and outcomes["completion"] == "FAIL" and outcomes["metrics"] == "FAIL"
    assert outcomes["fallback"] == "PASS"  # the local model is still there for the clients
    assert "FAILED (health, completion, metrics" in out


def test_without_the_client_sdk_the_local_model_is_called_directly(
        server: Any, fake: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_gateway_client", None)  # import fails
    code, outcomes, out = verify(capsys, server.url, "--api-key", AGENT_KEY, "--ollama-url", fake.url)
    assert code == 0 and outcomes["fallback"] == "PASS", out
    assert "Ollama /api/chat called directly" in out


def test_learning_worker_age(server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, outcomes, out = verify(capsys, server.url, "--api-key", AGENT_KEY, "--learning-max-age", "3600")
    assert code == 1 and outcomes["learning"] == "FAIL" and "no learning cycle has reported" in out

    gauge = server.gateway.metrics.cycle_last_success
    gauge.labels("validators").set(time.time() - 600)
    gauge.labels("assignments").set(time.time() - 20 * 3600)
    code, outcomes, out = verify(capsys, server.url, "--api-key", AGENT_KEY, "--learning-max-age", "3600")
    assert code == 0 and outcomes["learning"] == "PASS", out
    code, outcomes, out = verify(capsys, server.url, "--api-key", AGENT_KEY, "--learning-max-age", "60")
    assert code == 1 and outcomes["learning"] == "FAIL"


def test_learning_ages_parses_the_exposition_format() -> None:
    text = (
        "# HELP llm_gateway_learning_cycle_last_success_timestamp_seconds When ...\n"
        'llm_gateway_learning_cycle_last_success_timestamp_seconds{cycle="validators"} 1000.0\n'
        'llm_gateway_learning_cycle_last_success_timestamp_seconds{cycle="thresholds"} 0.0\n'
        'llm_gateway_learning_cycle_runs_total{cycle="validators"} 3.0\n'
    )
    assert learning_ages(text, now=4600.0) == {"validators": 3600.0}
