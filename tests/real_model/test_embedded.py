"""The embedded default: `gateway.local_models` in the config, the gateway starts and serves the model.

This is what `scripts/run` gives a fresh machine with no Ollama (config/local.yaml). Skipped until
the settings accept `local_models` (proxy/settings.py wires proxy/local_models.py in).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.settings import Settings, load_settings
from tests.real_model.support import require_model
from tests.support.servers import AGENT_KEY, ENV, GatewayServer

ROOT = Path(__file__).resolve().parents[2]
wired = pytest.mark.skipif("local_models" not in Settings.model_fields,
                           reason="gateway.local_models is not wired into proxy/settings.py yet")


@wired
def test_local_config_keeps_the_external_chain_of_the_main_config() -> None:
    # config/local.yaml repeats the external provider chain of config/litellm.yaml: they must not drift.
    main = yaml.safe_load((ROOT / "config/litellm.yaml").read_text())
    local = yaml.safe_load((ROOT / "config/local.yaml").read_text())
    external = [d for d in main["model_list"] if d["model_name"] == "external"]
    assert [d for d in local["model_list"] if d["model_name"] == "external"] == external
    assert local["router_settings"] == main["router_settings"]
    same = {"aliases", "auth", "callers", "limits", "tiers", "default_tier", "data_dir"}
    assert {k: local["gateway"].get(k) for k in same} == {k: main["gateway"].get(k) for k in same}
    settings = load_settings(ROOT / "config/local.yaml")
    assert [m.model for m in settings.local_models] == ["smollm2"]


@wired
@pytest.mark.real_model
def test_gateway_starts_its_local_model_and_answers(tmp_path: Path) -> None:
    require_model()
    os.environ.update(ENV)
    config: dict[str, Any] = {
        "model_list": [],
        "gateway": {
            "tiers": ["fast", "medium", "large"],
            "embedding_group": "embeddings",
            "callers": [{"name": "agent", "role": "agent", "key": "os.environ/TEST_AGENT_KEY"}],
            "local_models": [{"name": "smollm2", "model": "smollm2",
                              "groups": ["fast", "medium", "large", "embeddings"], "embeddings": True,
                              "threads": 2, "context": 2048, "temperature": 0, "seed": 42, "max_tokens": 64}],
        },
    }
    with GatewayServer(config, tmp_path) as server:
        auth = {"Authorization": f"Bearer {AGENT_KEY}"}
        question = [{"role": "user", "content": "Name three primary colors."}]
        chat = httpx.post(server.url + "/v1/chat/completions", headers=auth, timeout=60,
                          json={"model": "auto", "max_tokens": 30, "messages": question})
        assert chat.status_code == 200, chat.text
        text = chat.json()["choices"][0]["message"]["content"].lower()
        assert any(color in text for color in ("red", "blue", "yellow")), text
        assert chat.headers["x-gateway-model"] == "smollm2@fast"
        embedded = httpx.post(server.url + "/v1/embeddings", headers=auth, timeout=60,
                              json={"model": "auto", "input": ["hello", "world"]})
        assert embedded.status_code == 200, embedded.text
        vectors = [item["embedding"] for item in embedded.json()["data"]]
        assert len(vectors) == 2 and len(vectors[0]) == 576 and vectors[0] != vectors[1]
        models = httpx.get(server.url + "/v1/models", headers=auth, timeout=10).json()
        assert "smollm2@fast" in {m["id"] for m in models["data"]}
        health = httpx.get(server.url + "/health", timeout=10).json()
        local = health["dependencies"].get("local_models")
        if local is not None:  # reported once /health shows local models
            assert local["smollm2"]["state"] == "ok" and local["smollm2"]["pid"]
        pid = server.gateway.local.status()["smollm2"]["pid"]
    with pytest.raises(ProcessLookupError):  # the gateway's shutdown ended its model server
        os.kill(pid, 0)


@wired
@pytest.mark.real_model
def test_the_offline_default_config_serves_and_flags_without_any_key(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # config/local.yaml as scripts/run uses it on a fresh machine: no provider key, so the external
    # tier has no deployment. A bad answer on `large` then has nowhere to escalate: the gateway must
    # answer with the best it has, flagged, not fail.
    require_model()
    for name in ("CEREBRAS_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY", "NVIDIA_NIM_API_KEY", "CLOUDFLARE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_GATEWAY_AGENT_KEY", AGENT_KEY)
    monkeypatch.setenv("LLM_GATEWAY_ADMIN_KEY", "gw-admin-not-used-here")
    config = yaml.safe_load((ROOT / "config/local.yaml").read_text())
    config["gateway"]["local_models"][0].update(threads=2, temperature=0, seed=42)
    with GatewayServer(config, tmp_path) as server:
        auth = {"Authorization": f"Bearer {AGENT_KEY}", "x-task-type": "code_generation"}
        response = httpx.post(server.url + "/v1/chat/completions", headers=auth, timeout=60, json={
            "model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "Explain hash tables."}]})
        assert response.status_code == 200, response.text
        assert response.headers["x-gateway-status"] == "pending_review"
        assert response.json()["choices"][0]["finish_reason"] == "length"
