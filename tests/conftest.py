"""Shared fixtures: the network guard, the fake upstream, and gateways wired to it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

for _key, _value in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true",
                     "HF_HUB_OFFLINE": "1", "LITELLM_TELEMETRY": "False"}.items():
    os.environ.setdefault(_key, _value)

from tests.support import netguard  # noqa: E402
from tests.support.servers import AGENT_KEY, ENV, GatewayServer, base_config  # noqa: E402

netguard.install()
os.environ.update(ENV)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if netguard.violations:
        session.exitstatus = 1
        print("\nNON-LOOPBACK CONNECTIONS ATTEMPTED:\n  " + "\n  ".join(sorted(set(netguard.violations))))


@pytest.fixture(scope="session")
def fake() -> Iterator[Any]:
    from fake_upstream.server import FakeUpstream

    with FakeUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        fake = request.getfixturevalue("fake")
        fake.reset()


@pytest.fixture
def make_gateway(tmp_path: Path, fake: Any) -> Iterator[Callable[..., GatewayServer]]:
    started: list[GatewayServer] = []

    def make(config: dict[str, Any] | None = None, **gateway: Any) -> GatewayServer:
        server = GatewayServer(config or base_config(fake.url, **gateway), tmp_path / f"gw{len(started)}")
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def gateway(fake: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """One shared gateway with the default test config (tests must not change its config)."""
    with GatewayServer(base_config(fake.url), tmp_path_factory.mktemp("gateway")) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> Any:
    import openai

    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=AGENT_KEY, max_retries=0, timeout=15)


@pytest.fixture
def caplog_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
