"""Helpers shared by the bench scripts: child servers, /proc readings, a closed-loop load generator.

Nothing here imports the gateway or litellm: the bench measures servers it starts as separate
processes, so the load generator's own CPU never lands in the numbers it reports for them.
Linux only (reads /proc). Everything listens on and talks to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- ports and child processes -------------------------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildServer:
    """A server subprocess in its own session (so its workers are stopped with it), output to a log file."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ChildServer:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, url: str, timeout_s: float) -> float:
        """Poll `url` until it answers 200; returns the seconds it took. Raises if the child dies or times out."""
        started = time.monotonic()
        deadline = started + timeout_s
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise RuntimeError(f"{self.name} exited with {self.proc and self.proc.returncode} before "
                                       f"it was ready; its log:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return time.monotonic() - started
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready at {url} after {timeout_s:.0f} s; its log:\n{self.log_tail()}")

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the child's process group, SIGKILL it after `grace_s`. Safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            # Workers of a multi-process server may outlive their parent for a moment.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


# --- /proc readings --------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (uvicorn's workers, for `--workers N`)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))  # fields[1] is the ppid
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (utime + stime from /proc/PID/stat)."""
    total = 0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, all cores (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    """A `/proc/PID/status` value in KiB (`VmHWM`, `VmRSS`) summed over the process tree."""
    total = 0
    for member in process_tree(pid):
        try:
            text = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(key + ":"):
                total += int(line.split()[1])
                break
    return total


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def package_version(name: str, python: str) -> str:
    """A package's installed version in the interpreter `python` (without importing the package)."""
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip() or "?"


def git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return rev + ("+dirty" if dirty else "")


# --- load ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One request as the client saw it. Times in seconds; `overhead_ms` from `x-gateway-overhead-ms`."""

    ok: bool
    latency: float
    ttfb: float | None = None
    overhead_ms: float | None = None
    error: str | None = None


@dataclass
class LoadRun:
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0


async def run_closed_loop(send: Callable[[httpx.AsyncClient], Awaitable[Sample]],
                          clients: Sequence[httpx.AsyncClient], total: int) -> LoadRun:
    """One worker per entry of `clients` sends requests back to back (closed loop) until `total` were sent.

    Pass distinct clients (`worker_clients`) for one keep-alive connection per worker, or the same
    client repeated to share one pool between the workers.
    """
    run = LoadRun()
    issued = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < total:
            issued += 1
            started = time.perf_counter()
            try:
                sample = await send(client)
            except (httpx.HTTPError, OSError, ValueError) as exc:
                sample = Sample(False, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"[:200])
            run.samples.append(sample)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients[:total]))
    run.wall_s = time.perf_counter() - wall0
    run.client_cpu_s = time.process_time() - cpu0
    return run


def http_client(connections: int, timeout_s: float) -> httpx.AsyncClient:
    """HTTP/1.1 keep-alive client with a pool of `connections` connections; ignores proxy env vars."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout_s), trust_env=False)


@contextlib.asynccontextmanager
async def worker_clients(concurrency: int, timeout_s: float, shared: bool = False) -> AsyncIterator[
        list[httpx.AsyncClient]]:
    """`concurrency` clients for `run_closed_loop`: one per worker (default) or one shared pool.

    One client per worker is the default because httpcore's shared pool costs CPU that grows with
    its size: on 2 cores, 64 workers on one pool of 64 connections spent ~9-11 ms of client CPU
    per request and capped a 20 ms fake at ~100 req/s, versus ~0.7 ms and ~1,200 req/s with 64
    single-connection clients. Both are HTTP/1.1 keep-alive, one connection per worker.
    """
    if shared:
        client = http_client(concurrency, timeout_s)
        async with client:
            yield [client] * concurrency
        return
    clients = [http_client(1, timeout_s) for _ in range(concurrency)]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> Sample:
    started = time.perf_counter()
    response = await client.post(url, content=body, headers=headers)
    latency = time.perf_counter() - started
    overhead = response.headers.get("x-gateway-overhead-ms")
    ok = response.status_code == 200 and b'"choices"' in response.content
    error = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
    return Sample(ok, latency, None, float(overhead) if overhead else None, error)


async def post_stream(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> Sample:
    """POST and read an SSE answer to its end; TTFB is the first body byte, latency the last one."""
    started = time.perf_counter()
    ttfb: float | None = None
    tail = b""
    async with client.stream("POST", url, content=body, headers=headers) as response:
        overhead = response.headers.get("x-gateway-overhead-ms")
        async for chunk in response.aiter_raw():
            if ttfb is None and chunk:
                ttfb = time.perf_counter() - started
            tail = (tail + chunk)[-64:]
        latency = time.perf_counter() - started
        status = response.status_code
    ok = status == 200 and tail.rstrip().endswith(b"data: [DONE]")
    error = None if ok else f"HTTP {status}, stream ended with {tail[-60:]!r}"
    return Sample(ok, latency, ttfb, float(overhead) if overhead else None, error)


# --- statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def install_sigterm_as_exit() -> None:
    """Turn SIGTERM into SystemExit so `finally:` blocks stop the child servers."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def uvloop_runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when it is installed (a cheaper load generator), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)
