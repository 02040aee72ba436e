"""Helpers for the real-model tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from proxy.local_models import LocalModelConfig, LocalModelError, LocalModels, packaged_path, server_available

T = TypeVar("T")
TIERS = ("fast", "medium", "large")
MODEL = "smollm2"
LOCAL_KEY_ENV = "LOCAL_MODEL_KEY"  # the config must name keys by environment variable; the server has none


def missing_model() -> str | None:
    """Why the real model cannot run here, or None."""
    if not server_available():
        return "xllamacpp is not installed (pip install 'llm-gateway[local]')"
    try:
        packaged_path(MODEL)
    except LocalModelError as exc:
        return str(exc)
    return None


def require_model() -> None:
    reason = missing_model()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"real-model tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(reason)


class LoopThread:
    """An event loop in a background thread, for the async manager under sync fixtures."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="local-models", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def model_config(**overrides: Any) -> LocalModelConfig:
    fields: dict[str, Any] = {"name": MODEL, "model": MODEL, "groups": list(TIERS), "threads": 2, "context": 4096,
                              "temperature": 0.0, "seed": 42, "max_tokens": 256,
                              "input_cost_per_token": 1e-8, "output_cost_per_token": 2e-8}
    fields.update(overrides)
    return LocalModelConfig(**fields)


def gateway_config(models: LocalModels, **gateway: Any) -> dict[str, Any]:
    """A gateway config whose tiers are the managed model's deployments (written as a config file would)."""
    model_list = []
    for resolved in models.deployments():
        entry = resolved.deployment.model_dump(exclude_none=True)
        entry["litellm_params"]["api_key"] = f"os.environ/{LOCAL_KEY_ENV}"
        model_list.append(entry)
    config: dict[str, Any] = {
        "model_list": model_list,
        "router_settings": {"num_retries": 0, "allowed_fails": 0},
        "gateway": {
            "tiers": list(TIERS),
            "default_tier": "fast",
            "embedding_group": None,
            "callers": [
                {"name": "agent", "role": "agent", "key": "os.environ/TEST_AGENT_KEY"},
                {"name": "admin", "role": "admin", "key": "os.environ/TEST_ADMIN_KEY"},
            ],
            "limits": {"request_timeout_s": 90},
            "session_pin_ttl_s": 0,  # every test starts from its task type's tier
        },
    }
    config["gateway"].update(gateway)
    return config
