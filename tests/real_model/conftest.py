"""Real-model tests: a managed llama.cpp server on the packaged SmolLM2-135M, and gateways on it.

One model server for the whole session (it loads in about a second; answers take ~10 ms a token
on 2 cores), started through `proxy.local_models` exactly as the gateway starts it. Sampling is
pinned server-side (temperature 0, seed 42) so routes that send no sampling parameters (the legacy
ones) are deterministic too. When xllamacpp or the model package is missing the tests are skipped
on a developer machine and fail under CI (CI=true), so a missing install step cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.local_models import LocalModels
from tests.real_model.support import LOCAL_KEY_ENV, LoopThread, gateway_config, model_config, require_model
from tests.support.servers import ENV, GatewayServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_model: runs a real local model (xllamacpp + the packaged SmolLM2)")


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def local_models(loop_thread: LoopThread) -> Iterator[LocalModels]:
    """The session's SmolLM2 server, serving the groups fast, medium and large."""
    require_model()
    models = LocalModels([model_config()])
    loop_thread.run(models.start())
    assert models.ok, models.status()
    yield models
    loop_thread.run(models.stop())


@pytest.fixture(scope="session")
def real_gateway(local_models: LocalModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    os.environ.update(ENV)
    os.environ.setdefault(LOCAL_KEY_ENV, "no-key-local")
    workdir: Path = tmp_path_factory.mktemp("real-gateway")
    with GatewayServer(gateway_config(local_models), workdir) as server:
        yield server
