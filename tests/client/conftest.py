"""Fixtures for the client SDK tests: a fake Ollama of their own, a stand-in for a sick gateway,
and a factory for clients whose sleeps are recorded instead of slept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.support import SleepRecorder, StandIn
from tests.support.servers import AGENT_KEY

_CLIENT_ENV = ("LLM_GATEWAY_URL", "LLM_GATEWAY_API_KEY", "LLM_GATEWAY_CALLER", "OLLAMA_URL", "OLLAMA_MODEL",
               "OLLAMA_API", "OLLAMA_API_KEY", "LLM_GATEWAY_FALLBACK", "LLM_GATEWAY_CONNECT_TIMEOUT",
               "LLM_GATEWAY_READ_TIMEOUT", "LLM_GATEWAY_PROBE_TIMEOUT", "LLM_GATEWAY_HEALTH_COOLDOWN",
               "LLM_GATEWAY_MAX_ATTEMPTS", "LLM_GATEWAY_MAX_RETRY_AFTER", "LLM_GATEWAY_STATE_DIR")


@pytest.fixture(autouse=True)
def _client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The developer's own LLM_GATEWAY_* / OLLAMA_* settings must not leak into the tests."""
    for name in _CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture(scope="session")
def _ollama_server() -> Iterator[Any]:
    from fake_upstream.server import FakeUpstream

    with FakeUpstream() as server:
        yield server


@pytest.fixture
def ollama(_ollama_server: Any) -> Any:
    """A second fake upstream playing the local Ollama (native /api/chat and OpenAI /v1)."""
    _ollama_server.reset()
    return _ollama_server


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def make_client(ollama: Any, state_dir: Path, sleeps: SleepRecorder) -> Iterator[Callable[..., Any]]:
    """`make_client(base_url, **options)`: a sync client with the test defaults (agent key, the
    fake Ollama, a private state dir, recorded sleeps, rng fixed at 0.5); closed afterwards."""
    from llm_gateway_client import LLMGatewayClient

    clients: list[Any] = []

    def make(base_url: str, **options: Any) -> Any:
        defaults: dict[str, Any] = {"api_key": AGENT_KEY, "ollama_url": ollama.url, "state_dir": state_dir,
                                    "sleep": sleeps, "rng": lambda: 0.5, "connect_timeout": 2.0,
                                    "read_timeout": 15.0}
        client = LLMGatewayClient(base_url, **{**defaults, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

