"""The gateway under test, served by uvicorn on a free loopback port in a background thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from proxy.app import create_app
from proxy.settings import load_settings

PROVIDER_KEY = "sk-fake-provider-7f3a9c1e5b2d4a6f"  # must never appear in any response or log
AGENT_KEY = "gw-agent-key-0b8e2f7a9c"
ADMIN_KEY = "gw-admin-key-5d1c3e9f7b"
ENV = {"FAKE_PROVIDER_KEY": PROVIDER_KEY, "TEST_AGENT_KEY": AGENT_KEY, "TEST_ADMIN_KEY": ADMIN_KEY}


def deployment(group: str, model: str, api_base: str, provider: str = "openai", **extra: Any) -> dict[str, Any]:
    model_info = {"id": extra.pop("id", model), "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}
    params = {"model": f"{provider}/{model}", "api_base": api_base, "api_key": "os.environ/FAKE_PROVIDER_KEY", **extra}
    return {"model_name": group, "litellm_params": params, "model_info": model_info}


def base_config(fake_url: str, **gateway: Any) -> dict[str, Any]:
    """A config whose every deployment is the fake upstream (one model name per tier)."""
    v1 = fake_url + "/v1"
    config: dict[str, Any] = {
        "model_list": [
            deployment("fast", "fake-fast", v1),
            deployment("medium", "fake-medium", v1),
            deployment("large", "fake-large", v1),
            deployment("external", "fake-external", v1),
            deployment("embeddings", "fake-embed", v1),
        ],
        "router_settings": {"num_retries": 0, "allowed_fails": 0, "cooldown_time": 30},
        "gateway": {
            "aliases": {"gpt-*": "auto", "claude-*": "auto"},
            "callers": [
                {"name": "agent", "role": "agent", "key": "os.environ/TEST_AGENT_KEY"},
                {"name": "admin", "role": "admin", "key": "os.environ/TEST_ADMIN_KEY"},
            ],
            "limits": {"max_body_bytes": 65536, "request_timeout_s": 10},
            "audit": {"spot_check_share": 0.0},  # deterministic review queues; spot checks have their own test
        },
    }
    config["gateway"].update(gateway)
    return config


class GatewayServer:
    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        # Each gateway gets its own data dir (SQLite audit DB, spool), unless the test chose one.
        config.setdefault("gateway", {}).setdefault("data_dir", str(workdir / "data"))
        self.config_path = workdir / "gateway.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.settings = load_settings(self.config_path)
        self.app = create_app(self.settings)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, timeout: float = 30.0) -> GatewayServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, loop="asyncio", http="h11", lifespan="on",
                                log_level="warning", log_config=None, access_log=False,
                                timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="gateway", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("gateway failed to start")
            time.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(3)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
