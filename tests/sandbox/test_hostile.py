"""Hostile answers: each is contained, scored, and leaves the test process (and machine) working.

The prompt asks for `f` with the example `f(3) -> 9`; each answer misbehaves instead. Limits come
from the shared sandbox (timeout 2 s, CPU 2 s, 256 MB, 16 processes, 64 KB of output)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

from plugins.sandbox import Sandbox

from .conftest import answer, code_request, fenced

PROMPT = "Write a Python function f(x) that returns x squared.\nExample: f(3) -> 9\n"
RIGHT = "def f(x):\n    return x * x\n"


def check(validator, code: str):
    started = time.monotonic()
    result = validator.check_blocking(code_request(PROMPT), answer(fenced(code)))
    return result, time.monotonic() - started


def job(code: str, *sources: str, **extra) -> dict:
    return {"code": code, "cases": [{"id": i, "kind": "eval", "source": s} for i, s in enumerate(sources)], **extra}


def still_fine(validator) -> None:
    result, _ = check(validator, RIGHT)
    assert not result.abstained and result.score == 10.0, result
    assert subprocess.run(["true"], check=False).returncode == 0


def test_python_level_infinite_loop_is_stopped_and_scores_zero(validator):
    result, took = check(validator, "def f(x):\n    while True:\n        pass\n")
    assert result.score == 0.0 and not result.passed and "timed out" in result.reason
    assert took < 4  # stopped by the per-call timer, well inside the 2 s wall limit plus grace
    still_fine(validator)


def test_loop_inside_c_code_is_killed_at_the_wall_limit(validator):
    result, took = check(validator, "def f(x):\n    return sum(range(10 ** 15))\n")
    assert result.score == 0.0 and not result.passed
    assert "timed out" in result.reason or "CPU" in result.reason
    assert took < 5
    still_fine(validator)


def test_fork_bomb_is_held_to_the_process_limit(validator, sandbox: Sandbox):
    counting = job(
        "import os, time\n"
        "def forks():\n"
        "    n = 0\n"
        "    while n < 1000:\n"
        "        try:\n"
        "            pid = os.fork()\n"
        "        except OSError:\n"
        "            return n\n"
        "        if pid == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "    return n\n",
        "forks()",
    )
    run = sandbox.run(counting)
    forks = run.cases[0]["value"][1]
    assert 0 < forks < sandbox.config.max_procs  # RLIMIT_NPROC applies (a uid of its own, not root)
    bomb = (
        "import os\n"
        "def f(x):\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    )
    before = len([p for p in os.listdir("/proc") if p.isdigit()])
    result, took = check(validator, bomb)
    assert result.score == 0.0 and took < 5
    time.sleep(0.3)  # the reaper finishes off the worker
    after = len([p for p in os.listdir("/proc") if p.isdigit()])
    assert after < before + 10  # every process of the bomb is gone with its PID namespace
    still_fine(validator)


def test_memory_hog_hits_the_address_space_limit(validator):
    result, _ = check(validator, "def f(x):\n    hog = bytearray(4 * 1024 ** 3)\n    return 9\n")
    assert result.score == 0.0 and "MemoryError" in result.reason
    result, took = check(validator, "def f(x):\n    hog = []\n    while True:\n        hog.append('x' * 10 ** 6)\n")
    assert result.score == 0.0 and took < 5
    still_fine(validator)


def test_no_connection_reaches_a_loopback_listener(validator, sandbox: Sandbox):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        code = (
            "import socket\n"
            "def f(x):\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hello')\n"
            "    return x * x\n"
        )
        result, _ = check(validator, code)
        assert result.score == 0.0 and "OSError" in result.reason  # network unreachable
        run = sandbox.run(job(f"import socket\ns = socket.socket()\nrc = s.connect_ex(('127.0.0.1', {port}))\n", "rc"))
        assert run.cases[0]["value"][1] != 0
        time.sleep(0.2)
        try:
            listener.accept()
            accepted = True
        except BlockingIOError:
            accepted = False
        assert not accepted
    finally:
        listener.close()


def test_the_gateways_secrets_are_not_in_the_environment(sandbox: Sandbox):
    os.environ["GATEWAY_TEST_SECRET"] = "s3cr3t-value"
    try:
        run = sandbox.run(job("import os\n", "dict(os.environ)", "open('/proc/1/environ', 'rb').read()"))
        environment = str(run.cases[0]["value"])
        assert "GATEWAY_TEST_SECRET" not in environment and "s3cr3t-value" not in environment
        assert "s3cr3t-value" not in str(run.cases[1])
    finally:
        del os.environ["GATEWAY_TEST_SECRET"]


def test_writes_outside_the_temporary_directory_do_not_land(sandbox: Sandbox):
    name = f"outside-{uuid.uuid4().hex}"
    targets = [f"/tmp/{name}", str(Path.cwd() / name), f"/var/tmp/{name}", f"/root/{name}"]
    code = (
        "import os\n"
        "def write(path):\n"
        "    try:\n"
        "        with open(path, 'w') as handle:\n"
        "            handle.write('x')\n"
        "        return 'written'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
    )
    run = sandbox.run(job(code, *(f"write({t!r})" for t in targets), "write('inside.txt')", "os.getcwd()"))
    outcomes = [run.cases[i]["value"][1] for i in range(len(targets) + 2)]
    assert outcomes[-2:] == ["written", "/tmp"]  # the private /tmp is the one writable place
    for target in targets:
        assert not Path(target).exists(), target


def test_output_flood_is_capped(validator, sandbox: Sandbox):
    flood = (
        "import os, sys\n"
        "def f(x):\n"
        "    while True:\n"
        "        print('y' * 10000)\n"
        "        for fd in range(1, 20):\n"
        "            try:\n"
        "                os.write(fd, b'z' * 65536)\n"
        "            except OSError:\n"
        "                pass\n"
    )
    result, took = check(validator, flood)
    assert result.score == 0.0 and took < 5
    run = sandbox.run(job(flood, "f(3)"))
    assert run.output_bytes <= sandbox.config.max_output_kb * 1024 + 65536
    assert run.truncated or run.timed_out
    still_fine(validator)


def test_killing_and_escaping_reach_nothing_outside(validator, sandbox: Sandbox):
    code = (
        "import os, signal\n"
        "def f(x):\n"
        "    for target in (-1, 0, os.getppid(), 1):\n"
        "        try:\n"
        "            os.kill(target, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return x * x\n"
    )
    result, _ = check(validator, code)
    # Every target is inside its own PID namespace (where it is PID 1, which ignores them): the
    # answer still runs and is scored normally, and nothing outside was touched.
    assert not result.abstained and result.score == 10.0
    run = sandbox.run(job("import os\n", "os.getuid()", "sorted(os.listdir('/proc'))[:3]", "os.getppid()"))
    assert run.cases[0]["value"][1] not in (0, os.getuid())
    assert run.cases[2]["value"][1] == 0  # its parent is outside its PID namespace
    still_fine(validator)
