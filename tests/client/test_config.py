"""Configuration: arguments over environment over defaults; bad values say which variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_gateway_client import ConfigurationError, LLMGatewayClient
from llm_gateway_client._config import ClientConfig, resolve_config


def test_defaults(tmp_path):
    config = resolve_config(environ={"XDG_CACHE_HOME": str(tmp_path)})
    assert (config.base_url, config.ollama_url, config.ollama_model) == (
        "http://127.0.0.1:8080", "http://127.0.0.1:11434", "qwen2.5:7b")
    assert (config.max_attempts, config.health_cooldown, config.fallback) == (3, 30.0, True)
    assert config.offline_log == tmp_path / "llm-gateway-client" / "offline.jsonl"
    assert resolve_config(environ={"HOME": "/x"}).state_dir.name == "llm-gateway-client"


def test_environment_then_arguments(monkeypatch, tmp_path):
    for name, value in {"LLM_GATEWAY_URL": "http://gw.local:9000/", "LLM_GATEWAY_API_KEY": "gw-secret",
                        "LLM_GATEWAY_CALLER": "nightly", "OLLAMA_URL": "http://127.0.0.1:9", "OLLAMA_MODEL": "phi3",
                        "LLM_GATEWAY_CONNECT_TIMEOUT": "1.5", "LLM_GATEWAY_READ_TIMEOUT": "60",
                        "LLM_GATEWAY_HEALTH_COOLDOWN": "5", "LLM_GATEWAY_MAX_ATTEMPTS": "2",
                        "LLM_GATEWAY_FALLBACK": "off", "LLM_GATEWAY_STATE_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    with LLMGatewayClient() as client:
        config = client.config
    assert (config.base_url, config.api_key, config.caller) == ("http://gw.local:9000", "gw-secret", "nightly")
    assert (config.ollama_url, config.ollama_model) == ("http://127.0.0.1:9", "phi3")
    assert (config.connect_timeout, config.read_timeout, config.health_cooldown) == (1.5, 60.0, 5.0)
    assert (config.max_attempts, config.fallback, config.state_dir) == (2, False, tmp_path)
    assert "gw-secret" not in repr(config)

    with LLMGatewayClient("http://127.0.0.1:1", "other", max_attempts=5, ollama_model="llama3") as client:
        assert (client.config.base_url, client.config.api_key) == ("http://127.0.0.1:1", "other")
        config = client.config
        assert (config.max_attempts, config.ollama_model, config.caller) == (5, "llama3", "nightly")


def test_bad_values_are_named():
    with pytest.raises(ConfigurationError, match="LLM_GATEWAY_MAX_ATTEMPTS='three'"):
        resolve_config(environ={"LLM_GATEWAY_MAX_ATTEMPTS": "three"})
    with pytest.raises(ConfigurationError, match="base_url must be an http"):
        ClientConfig(base_url="gateway:8080", state_dir=Path("/tmp/x"))
    with pytest.raises(ConfigurationError, match="ollama_api"):
        resolve_config(environ={"OLLAMA_API": "llamafile"})
    with pytest.raises(TypeError, match="unknown client option"):
        LLMGatewayClient(retries=4)
