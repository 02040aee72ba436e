"""Config loading: the shipped file is valid, and a bad file is refused naming the key and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxy.settings import DEFAULT_CONFIG, ConfigError, load_settings, resolve_deployments


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shipped() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def test_shipped_config_is_valid_and_keyless_providers_are_left_out(monkeypatch):
    for name in ("CEREBRAS_API_KEY", "GROQ_API_KEY", "MISTRAL_API_KEY", "NVIDIA_NIM_API_KEY", "CLOUDFLARE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.tiers == ["fast", "medium", "large", "external"]
    usable, skipped = resolve_deployments(settings)
    assert {d.deployment.model_name for d in usable} == {"fast", "medium", "large", "embeddings"}
    assert len(skipped) == 5 and any("CEREBRAS_API_KEY" in line for line in skipped)
    assert all(d.model_info.get("input_cost_per_token") is not None for d in settings.model_list)


def test_provider_key_from_environment_is_resolved(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk_test_value")
    usable, _ = resolve_deployments(load_settings())
    groq = [d for d in usable if d.litellm_params["model"].startswith("groq/")]
    assert groq[0].litellm_params["api_key"] == "gsk_test_value"


def test_environment_overrides_the_file(monkeypatch):
    monkeypatch.setenv("GATEWAY_AUTH__MODE", "open")
    monkeypatch.setenv("GATEWAY_DEFAULT_TIER", "medium")
    settings = load_settings()
    assert settings.auth.mode == "open" and settings.default_tier == "medium"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["gateway"].update(default_tierr="fast"), "default_tierr"),
        (lambda c: c["gateway"]["auth"].update(mode="maybe"), "auth.mode"),
        (lambda c: c["gateway"].update(default_tier="huge"), "default_tier"),
        (
            lambda c: c["model_list"][0]["litellm_params"].update(api_key="sk-literal"),
            "model_list.0.litellm_params.api_key",
        ),
        (lambda c: c["gateway"]["limits"].update(max_body_bytes=-1), "limits.max_body_bytes"),
        (lambda c: c["gateway"]["aliases"].update({"x-*": "nowhere"}), "aliases.x-*"),
        (lambda c: c.update(routers={}), "routers"),
        (lambda c: c["gateway"]["callers"].append({"name": "x", "key": "plaintext"}), "callers.2.key"),
    ],
)
def test_invalid_config_names_the_bad_key(tmp_path, mutate, expected):
    config = shipped()
    mutate(config)
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, config))
    assert expected in str(info.value)


def test_config_check_cli_says_the_same_without_starting(tmp_path):
    config = shipped()
    config["gateway"]["auth"]["mode"] = "maybe"
    bad = write(tmp_path, config)
    cli = [sys.executable, "-m", "proxy.cli", "config", "check"]
    result = subprocess.run([*cli, str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "auth.mode" in result.stderr
    ok = subprocess.run([*cli, str(DEFAULT_CONFIG)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout


def test_serve_refuses_an_invalid_file_at_start(tmp_path):
    config = shipped()
    config["gateway"]["tiers"] = ["fast", "turbo"]
    result = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "serve", "--config", str(write(tmp_path, config))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "turbo" in result.stderr
