"""The program the sandbox runs: isolate itself, wait for one job, run it, report, exit.

Started by `runner.py` as `python -I -S -B child.py '<config json>'` with an empty environment, no
inherited descriptors and its own session. It imports nothing from the project (it must run with
`-I -S`: no site-packages, no current directory on sys.path) and only the standard library. This
file is the supervisor; the rest of the program is the `worker/` package beside it (`isolation`,
`harness`, `protocol`), which it imports by path before it isolates itself (`_import_worker`).

Processes
---------
P0, this process, is the supervisor. Before it reads any job it isolates itself (below) and
writes one line, `{"ready": ..., "isolation": {...}}` or `{"refused": "why"}`, so the gateway can
keep warm, already-isolated workers waiting. It then reads one job (a JSON line on stdin), forks
P1 and waits for it at most `timeout_s`; at the deadline it SIGKILLs P1. P1 is the first process
of a fresh PID namespace, so its death kills everything the answer started (a fork bomb, a
daemonised child, a process that left the session). P0 stays root and outside P1's PID
namespace: nothing the answer does can signal or trace it. Last, P0 writes `{"exit": {...}}`.
The lines are listed in `worker/protocol.py`.

P1 mounts a fresh /proc, sets the resource limits, drops to an unprivileged uid, points fds 0-2
at /dev/null and keeps a private copy of the result pipe, then runs the job (`worker/harness.py`):
the answer's code is executed statement by statement as module `__answer__`, and each case is
evaluated in that namespace, writing one `{"case": id, ...}` line per case as it finishes (so a
later hang loses nothing already measured). Values are encoded as tagged trees of builtin types
only (no method of an answer's object is trusted to compare itself); the gateway does the
comparing.

Isolation (P0, before any job)
------------------------------
New network, mount, PID, IPC and UTS namespaces; everything mounted read-only, nosuid and nodev
but a fresh size-limited tmpfs on /tmp; `hidden_paths` covered by empty tmpfs mounts; as root a
per-run uid and gid in P1, otherwise a user namespace with every capability dropped in P1;
`no_new_privs` in P1 (the details are in `worker/isolation.py`). Any of these failing is a
refusal unless the config says `allow_unisolated`.

What is not enforced: reading world-readable files outside the hidden paths; CPU and memory are
per-process limits (RLIMIT_CPU/AS), not a cgroup (a fork bomb's processes each get the limits, the
process count bounds the total); a hostile answer shares P1 with the harness and can forge its own
case results (it is contained, not trusted).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

EXIT_CPU = 152  # P1 exit status when RLIMIT_CPU's soft limit fires


def _import_worker() -> tuple[ModuleType, ModuleType, ModuleType]:
    """The `worker` package beside this file, imported under that top-level name.

    `-I` keeps this file's directory off sys.path: it goes on for this import only (last, so the
    standard library still comes first), and the package leaves sys.modules again, so an answer's
    `import worker` fails as it would anywhere. This runs before `isolate`, which may hide the
    gateway's files (its working directory, home directories) from the worker."""
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path.append(here)
    try:
        from worker import harness, isolation, protocol
    finally:
        sys.path.remove(here)
        for name in [name for name in sys.modules if name == "worker" or name.startswith("worker.")]:
            del sys.modules[name]
    return harness, isolation, protocol


if TYPE_CHECKING:
    from plugins.sandbox.worker import harness, isolation, protocol
else:
    harness, isolation, protocol = _import_worker()

def run_job(job: dict[str, Any], config: dict[str, Any], report: dict[str, Any], result_fd: int) -> None:
    """P1: its own process group (P0's is out of reach: `kill(0, ...)` can only hit the job's own
    processes), confine, detach from stdio, run."""
    os.setpgid(0, 0)
    isolation.confine(config, report, isolation.libc())
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over RLIMIT_FSIZE: an OSError, not a kill

    def on_cpu(signum: int, frame: Any) -> None:
        os._exit(EXIT_CPU)

    signal.signal(signal.SIGXCPU, on_cpu)  # as PID 1 a default-action SIGXCPU would be ignored
    sys.setrecursionlimit(2000)
    harness.Harness(job, result_fd).run()


def supervise(pid: int, timeout_s: float) -> dict[str, Any]:
    """Wait for P1 at most `timeout_s`, SIGKILL it after; how it ended."""
    import select

    started = time.monotonic()
    timed_out = False
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout_s)
    finally:
        os.close(pidfd)
    if not ready:
        timed_out = True
    # P1's whole process group, before P1 is reaped (so the group id cannot have been reused): in
    # a PID namespace P1's death ends everything anyway; without one this ends what it left behind.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return _ending(status, usage, timed_out, started)


def _ending(status: int, usage: Any, timed_out: bool, started: float) -> dict[str, Any]:
    ending: dict[str, Any] = {"timed_out": timed_out, "wall_ms": round((time.monotonic() - started) * 1000, 1)}
    if os.WIFSIGNALED(status):
        ending["signal"] = os.WTERMSIG(status)
    else:
        ending["code"] = os.WEXITSTATUS(status)
        if ending["code"] == EXIT_CPU:
            ending["cpu_limit"] = True
    if usage is not None:
        ending["cpu_ms"] = round((usage.ru_utime + usage.ru_stime) * 1000, 1)
        ending["maxrss_kb"] = usage.ru_maxrss
    return ending


def main() -> int:
    config: dict[str, Any] = json.loads(sys.argv[1])
    out = 1
    try:
        report = isolation.isolate(config)
    except isolation.Refused as exc:
        protocol.emit(out, {"refused": str(exc)})
        return 3
    protocol.emit(out, {"ready": True, "isolation": report})
    job = protocol.read_job(protocol.MAX_JOB_BYTES)
    if job is None:
        return 0
    result_fd = os.dup(out)
    if result_fd < protocol.RESULT_FD_MIN:
        moved = os.dup2(result_fd, protocol.RESULT_FD_MIN)
        os.close(result_fd)
        result_fd = moved
    pid = os.fork()
    if pid == 0:
        try:
            run_job(job, config, report, result_fd)
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                protocol.emit(result_fd, {"harness_error": f"{type(exc).__name__}: {exc}"[:300]})
        os._exit(0)
    os.close(result_fd)
    os.close(0)
    ending = supervise(pid, float(job.get("timeout_s", 2.0)))
    protocol.emit(out, {"exit": ending})
    os._exit(0)  # the report is out: no interpreter teardown for the gateway to wait on


if __name__ == "__main__":
    sys.exit(main())
