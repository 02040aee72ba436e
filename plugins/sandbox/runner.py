"""Running untrusted code out of the gateway's process: warm, isolated, bounded workers.

`Sandbox.run(job)` (blocking) and `await Sandbox.arun(job, wait_s)` hand one job to a worker
process (`child.py`, started as `python -I -S child.py <config>`) and return its `RunResult`.
Generated code never runs in the gateway's process, and the gateway's event loop never waits on
it: `arun` runs the blocking part on a small thread pool of its own.

Workers
-------
A worker isolates itself before it is given a job (fresh network, mount, PID, IPC and UTS
namespaces; a read-only filesystem with a private size-limited /tmp; see child.py) and says so on
its first line. Interpreter start-up and isolation cost tens of milliseconds, so `warm` keeps
`pool_size` workers started and waiting; a worker runs exactly one job and exits, so nothing
carries over from one answer to the next, and a replacement is started after each run.

Isolation is required: a worker that cannot get it refuses, `run` raises `SandboxRefused`, and
the refusal is remembered for `refusal_retry_s` (no process is started meanwhile). An operator
who accepts running generated code without namespaces sets `allow_unisolated` (the resource
limits, the uid change when root, the minimal environment and the temporary directory still
apply).

Limits, and who enforces them
-----------------------------
* wall time: the worker's supervisor kills the job at `timeout_s`; the gateway kills the worker's
  whole process group at `timeout_s + GRACE_S` if it has not finished by then;
* CPU seconds, address space, processes, file size, open files: rlimits set in the job process
  (as root it runs under a uid of its own, so RLIMIT_NPROC, which root ignores, applies);
* output: at most `max_output_kb` of the worker's output is read, then it is killed;
* concurrency: at most `pool_size` jobs at once; `arun` waits at most `wait_s` for a slot, then
  raises `SandboxBusy` (the caller abstains instead of holding a request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .slots import SandboxStats, Slots

CHILD = Path(__file__).with_name("child.py")
GRACE_S = 1.0
"""How long after the job's own timeout the gateway kills the worker's process group."""

DEFAULT_HIDDEN = ("/root", "/home", "/run", "/var/tmp", "/dev/shm", "/mnt", "/media", "/srv", "/sys", "/boot")


class SandboxError(Exception):
    """The sandbox could not run the job (not a verdict on the code)."""


class SandboxRefused(SandboxError):
    """Isolation is not available here and `allow_unisolated` is off."""


class SandboxBusy(SandboxError):
    """Every slot stayed taken for the whole wait."""


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    timeout_s: float = 2.0
    cpu_s: int = 2
    memory_mb: int = 256
    max_procs: int = 16
    max_output_kb: int = 64
    max_file_mb: int = 8
    max_open_files: int = 64
    pool_size: int = 2
    warm: bool = True
    allow_unisolated: bool = False
    hidden_paths: tuple[str, ...] = DEFAULT_HIDDEN
    hide_cwd: bool = True
    startup_timeout_s: float = 5.0
    refusal_retry_s: float = 60.0
    uid_base: int = 1_500_000_000
    uid_span: int = 100_000_000
    python: str = ""
    """Interpreter for the workers; empty: `sys.executable`."""


@dataclass(slots=True)
class RunResult:
    """What one worker reported. `cases` by case id; `ending` is the supervisor's account of how
    the job process ended (`timed_out`, `signal`, `code`, `cpu_limit`, `cpu_ms`, `maxrss_kb`)."""

    cases: dict[int, dict[str, Any]] = field(default_factory=dict)
    started: bool = False
    finished: bool = False
    loaded: dict[str, Any] | None = None
    ending: dict[str, Any] | None = None
    isolation: dict[str, Any] = field(default_factory=dict)
    harness_error: str | None = None
    truncated: bool = False
    killed: bool = False
    """The gateway had to kill the worker (past `timeout_s + GRACE_S`, or output over the cap)."""
    elapsed_ms: float = 0.0
    """From handing the job over to the worker's end."""
    startup_ms: float = 0.0
    """Time spent waiting for a worker to be ready (0 with a warm one)."""
    output_bytes: int = 0

    @property
    def timed_out(self) -> bool:
        return bool(self.ending and self.ending.get("timed_out")) or (self.killed and not self.truncated)

    @property
    def outcome(self) -> str:
        """One word for metrics: ok, truncated, timeout, cpu, killed, harness or incomplete."""
        ending = self.ending or {}
        if self.truncated:
            return "truncated"
        if self.timed_out:
            return "timeout"
        if ending.get("cpu_limit"):
            return "cpu"
        if "signal" in ending:
            return "killed"
        if self.harness_error:
            return "harness"
        return "ok" if self.finished else "incomplete"

    def problem(self) -> str | None:
        """Why the job did not finish normally, in a few words; None if it did."""
        if self.truncated:
            return "output over the cap"
        if self.timed_out:
            return "timed out"
        ending = self.ending or {}
        if ending.get("cpu_limit"):
            return "CPU limit"
        if "signal" in ending:
            name = signal.Signals(ending["signal"]).name if ending["signal"] in signal.valid_signals() else ""
            return f"killed by {name or ending['signal']}"
        if self.harness_error:
            return f"harness: {self.harness_error}"
        if not self.finished:
            return "ended early"
        return None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    workdir: str | None
    spawned: float
    buffer: bytearray = field(default_factory=bytearray)
    isolation: dict[str, Any] | None = None

    def dispose(self) -> None:
        """Kill the process group (before reaping, so the group id cannot have been reused), reap,
        remove the working directory."""
        _kill_group(self.proc.pid)
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _has_line(buffer: bytearray, marker: bytes) -> bool:
    """Does `buffer` hold a whole line starting with `marker` (or `marker` is the newline)?"""
    if marker == b"\n":
        return marker in buffer
    at = buffer.find(marker)
    while at != -1:
        if (at == 0 or buffer[at - 1] == 10) and buffer.find(b"\n", at) != -1:
            return True
        at = buffer.find(marker, at + 1)
    return False


def _read_some(fd: int, buffer: bytearray, deadline: float, limit: int, until: bytes | None) -> str:
    """Read into `buffer` until a whole line starting with `until` is in it, end of file, `limit`
    bytes or the deadline. Returns which: "found", "eof", "limit" or "deadline"."""
    while True:
        if until is not None and _has_line(buffer, until):
            return "found"
        if len(buffer) >= limit:
            return "limit"
        left = deadline - time.monotonic()
        if left <= 0:
            return "deadline"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, min(65536, limit - len(buffer) + 1))
        if not chunk:
            return "eof"
        buffer += chunk


class Sandbox:
    """A bounded pool of isolated, one-shot worker processes (see the module docstring)."""

    def __init__(self, config: SandboxConfig | None = None, *, stats: SandboxStats | None = None) -> None:
        self.config = config or SandboxConfig()
        if self.config.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.stats = stats or SandboxStats()
        self.slots = Slots(self.config.pool_size)
        self._python = self.config.python or sys.executable
        hidden = list(self.config.hidden_paths)
        if self.config.hide_cwd:
            hidden.append(os.getcwd())
        self._hidden = hidden
        self._lock = threading.Lock()
        self._spares: deque[_Worker] = deque()
        self._refused: tuple[str, float] | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(self.config.pool_size, thread_name_prefix="sandbox")
        self._reaper = _Reaper()
        self.isolation: dict[str, Any] | None = None
        """The isolation the last ready worker reported."""
        self.simulate_failure = False
        """Test hook: workers behave as on a platform without namespaces."""
        weakref.finalize(self, _dispose_all, self._spares)

    # ------------------------------------------------------------------ workers

    def _spawn(self) -> _Worker:
        if not self._python:
            raise SandboxRefused("no Python interpreter to run the sandbox with")
        config = self.config
        uid = config.uid_base + secrets.randbelow(config.uid_span)
        workdir = None
        if config.allow_unisolated:
            workdir = tempfile.mkdtemp(prefix="gw-sandbox-")
            if os.geteuid() == 0:
                os.chown(workdir, uid, uid)
        child_config = {
            "uid": uid,
            "cpu_s": config.cpu_s,
            "memory_mb": config.memory_mb,
            "max_procs": config.max_procs,
            "max_file_mb": config.max_file_mb,
            "max_open_files": config.max_open_files,
            "tmpfs_mb": max(config.max_file_mb * 2, 8),
            "hidden_paths": self._hidden,
            "allow_unisolated": config.allow_unisolated,
            "workdir": workdir,
            "simulate_failure": self.simulate_failure or None,
        }
        home = workdir or "/tmp"
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
               "HOME": home, "TMPDIR": home}
        proc = subprocess.Popen(
            [self._python, "-I", "-S", "-B", str(CHILD), json.dumps(child_config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=workdir or "/", env=env, close_fds=True, start_new_session=True,
        )
        return _Worker(proc, workdir, time.monotonic())

    def _ready(self, worker: _Worker) -> None:
        """Wait for the worker's first line; raises SandboxRefused or SandboxError."""
        if worker.isolation is not None:
            return
        assert worker.proc.stdout is not None
        fd = worker.proc.stdout.fileno()
        deadline = time.monotonic() + self.config.startup_timeout_s
        how = _read_some(fd, worker.buffer, deadline, 1 << 20, b"\n")
        if how != "found":
            raise SandboxError(f"worker did not start ({how})")
        line, _, rest = bytes(worker.buffer).partition(b"\n")
        worker.buffer[:] = rest
        try:
            hello = json.loads(line)
        except ValueError:
            raise SandboxError("worker said something unreadable") from None
        if "refused" in hello:
            raise SandboxRefused(str(hello["refused"]))
        worker.isolation = dict(hello.get("isolation") or {})
        self.isolation = worker.isolation

    def _take(self) -> _Worker:
        """A ready worker: a warm spare if one is alive, else a new one."""
        refused = self._refused
        if refused is not None:
            if time.monotonic() - refused[1] < self.config.refusal_retry_s:
                raise SandboxRefused(refused[0])
            self._refused = None
        while True:
            with self._lock:
                worker = self._spares.popleft() if self._spares else None
            if worker is None:
                break
            if worker.proc.poll() is None:
                try:
                    self._ready(worker)
                    return worker
                except SandboxRefused:
                    worker.dispose()
                    raise
                except SandboxError:
                    pass
            worker.dispose()
        worker = self._spawn()
        try:
            self._ready(worker)
        except BaseException:
            worker.dispose()
            raise
        return worker

    def _refill(self) -> None:
        if not self.config.warm or self._refused is not None:
            return
        while not self._closed:
            with self._lock:
                if len(self._spares) >= self.config.pool_size:
                    return
            worker = self._spawn()
            with self._lock:
                if not self._closed:
                    self._spares.append(worker)
                    continue
            worker.dispose()

    def warm_up(self) -> None:
        """Start the warm workers now (otherwise the first run starts them)."""
        self._refill()

    # ------------------------------------------------------------------ running

    def _run_blocking(self, job: dict[str, Any]) -> RunResult:
        if self._closed:
            raise SandboxError("sandbox closed")
        started = time.monotonic()
        try:
            worker = self._take()
        except SandboxRefused as exc:
            self._refused = (str(exc), time.monotonic())
            self.close_spares()
            self.stats.record("refused")
            raise
        except SandboxError:
            self.stats.record("error")
            raise
        result = RunResult(isolation=dict(worker.isolation or {}), startup_ms=(time.monotonic() - started) * 1000)
        timeout = float(job.get("timeout_s") or self.config.timeout_s)
        job = {**job, "timeout_s": timeout}
        begun = time.monotonic()
        try:
            assert worker.proc.stdin is not None and worker.proc.stdout is not None
            try:
                worker.proc.stdin.write(json.dumps(job).encode() + b"\n")
                worker.proc.stdin.close()
            except OSError as exc:
                raise SandboxError(f"worker went away ({exc.strerror or exc})") from None
            limit = self.config.max_output_kb * 1024
            how = _read_some(worker.proc.stdout.fileno(), worker.buffer, begun + timeout + GRACE_S, limit,
                             b'{"exit":')
            result.truncated = how == "limit"
            result.killed = how in ("limit", "deadline")
            result.output_bytes = len(worker.buffer)
            _parse(bytes(worker.buffer), result)
        finally:
            result.elapsed_ms = (time.monotonic() - begun) * 1000
            self._reaper.dispose(worker)  # kill and reap off this path: the report is complete
            self._refill()
        self.stats.record(result.outcome, result.elapsed_ms)
        return result

    def run(self, job: dict[str, Any], wait_s: float | None = None) -> RunResult:
        """Run one job, blocking; waits up to `wait_s` (default: forever) for a free slot."""
        if not self.slots.acquire_sync(float("inf") if wait_s is None else wait_s):
            self.stats.record("busy")
            raise SandboxBusy("every sandbox slot is taken")
        try:
            return self._run_blocking(job)
        finally:
            self.slots.release()

    async def arun(self, job: dict[str, Any], wait_s: float = 0.0) -> RunResult:
        """Run one job without blocking the event loop; raises SandboxBusy if no slot frees up
        within `wait_s`. A cancelled caller does not cancel the run: the slot stays taken until
        the worker is done (the pool never runs more than `pool_size` jobs)."""
        if not await self.slots.acquire(wait_s):
            self.stats.record("busy")
            raise SandboxBusy("every sandbox slot is taken")
        try:
            future: Future[RunResult] = self._executor.submit(self._run_and_release, job)
        except RuntimeError:  # executor shut down
            self.slots.release()
            raise SandboxError("sandbox closed") from None
        return await asyncio.shield(asyncio.wrap_future(future))

    def _run_and_release(self, job: dict[str, Any]) -> RunResult:
        try:
            return self._run_blocking(job)
        finally:
            self.slots.release()

    def probe(self) -> dict[str, Any]:
        """The isolation a worker gets here (starts one; raises SandboxRefused)."""
        worker = self._spawn()
        try:
            self._ready(worker)
            return dict(worker.isolation or {})
        finally:
            worker.dispose()

    # ------------------------------------------------------------------ shutdown

    def close_spares(self) -> None:
        _dispose_all(self._spares)

    def close(self) -> None:
        """Stop the spares and the pool (runs in flight finish; their workers are still reaped)."""
        self._closed = True
        self.close_spares()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._reaper.drain()


class _Reaper:
    """One daemon thread that kills, reaps and cleans up finished workers, so a run returns as soon
    as its report is complete (a worker's exit, namespace teardown included, takes ~20 ms)."""

    def __init__(self) -> None:
        self._queue: deque[_Worker] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def dispose(self, worker: _Worker) -> None:
        _kill_group(worker.proc.pid)  # now: nothing of the job may outlive its report
        with self._lock:
            self._queue.append(worker)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sandbox-reaper", daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(5.0)
            self._wake.clear()
            while True:
                try:
                    worker = self._queue.popleft()
                except IndexError:
                    break
                worker.dispose()

    def drain(self) -> None:
        """Dispose of everything queued, in this thread (tests, shutdown)."""
        while True:
            try:
                worker = self._queue.popleft()
            except IndexError:
                return
            worker.dispose()



def _dispose_all(spares: deque[_Worker]) -> None:
    while True:
        try:
            worker = spares.popleft()
        except IndexError:
            return
        worker.dispose()


def _parse(data: bytes, result: RunResult) -> None:
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # a cut-off last line, or noise written by the answer
        if not isinstance(line, dict):
            continue
        if "case" in line and isinstance(line["case"], int):
            result.cases.setdefault(line["case"], line)
        elif "exit" in line:
            result.ending = line["exit"] if isinstance(line["exit"], dict) else None
        elif line.get("started") is True:
            result.started = True
        elif line.get("end") is True:
            result.finished = True
        elif "loaded" in line:
            result.loaded = line["loaded"] if isinstance(line["loaded"], dict) else None
        elif "harness_error" in line:
            result.harness_error = str(line["harness_error"])[:300]
