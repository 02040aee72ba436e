"""The program the sandbox runs: isolate itself, wait for one job, run it, report, exit.

Started by `runner.py` as `python -I -S child.py '<config json>'` with an empty environment, no
inherited descriptors and its own session. It imports nothing from the project (it must run with
`-I -S`: no site-packages, no current directory on sys.path) and only the standard library.

Processes
---------
P0, this process, is the supervisor. Before it reads any job it isolates itself (below) and
writes one line, `{"ready": ..., "isolation": {...}}` or `{"refused": "why"}`, so the gateway can
keep warm, already-isolated workers waiting. It then reads one job (a JSON line on stdin), forks
P1 and waits for it at most `timeout_s`; at the deadline it SIGKILLs P1. P1 is the first process
of a fresh PID namespace, so its death kills everything the answer started (a fork bomb, a
daemonised child, a process that left the session). P0 stays root and outside P1's PID
namespace: nothing the answer does can signal or trace it. Last, P0 writes `{"exit": {...}}`.

P1 mounts a fresh /proc, sets the resource limits, drops to an unprivileged uid, points fds 0-2
at /dev/null and keeps a private copy of the result pipe, then runs the job: the answer's code is
executed statement by statement as module `__answer__`, and each case is evaluated in that
namespace, writing one `{"case": id, ...}` line per case as it finishes (so a later hang loses
nothing already measured). Values are encoded as tagged trees of builtin types only (no method of
an answer's object is trusted to compare itself); the gateway does the comparing.

Isolation (P0, before any job)
------------------------------
* network: a new network namespace (only a loopback interface, and it is down);
* mounts: a new mount namespace, everything made private, then read-only, nosuid and nodev
  recursively; a fresh size-limited tmpfs on /tmp is the only writable place (cwd, HOME, TMPDIR);
  `hidden_paths` (home directories, /run, /sys, the gateway's working directory, ...) are covered by
  empty tmpfs mounts, except that the interpreter's own prefix is bound back in so imports work;
* PID, IPC and UTS namespaces;
* as root: a per-run uid and gid (P1) so RLIMIT_NPROC is enforced (it is not for root) and no file
  of any real user is writable or readable beyond world-readable; not root: a user namespace
  (outer uid mapped to 0), capabilities and the bounding set dropped in P1;
* `no_new_privs` in P1, so no setuid binary can give the answer privileges back.
Any of these failing is a refusal unless the config says `allow_unisolated`.

What is not enforced: reading world-readable files outside the hidden paths; CPU and memory are
per-process limits (RLIMIT_CPU/AS), not a cgroup (a fork bomb's processes each get the limits, the
process count bounds the total); a hostile answer shares P1 with the harness and can forge its own
case results (it is contained, not trusted).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import ctypes
import io
import json
import os
import signal
import sys
import time
import types
from typing import Any

RESULT_FD_MIN = 10
MAX_HANGS = 2
"""After this many cases ran out of time the rest are skipped (reported as such): an answer that
hangs on its examples has shown what it does, and the job ends well before its wall limit."""
MAX_JOB_BYTES = 8 * 1024 * 1024

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (new syscalls share one table)

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

EXIT_CPU = 152  # P1 exit status when RLIMIT_CPU's soft limit fires


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def emit(fd: int, obj: dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode("utf-8", "replace"))


# --------------------------------------------------------------------------- isolation (P0, P1)


class Refused(Exception):
    pass


_LIBC: _Libc | None = None


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _encode_arg(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        self.lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.lib.unshare.argtypes = [ctypes.c_int]
        self.lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(flags), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
        rc = self.lib.mount(_encode_arg(source), _encode_arg(target), _encode_arg(fstype), flags, _encode_arg(data))
        self._check(rc, f"mount {target}")

    def umount(self, target: str) -> None:
        self._check(self.lib.umount2(target.encode(), MNT_DETACH), f"umount {target}")

    def mount_setattr(self, path: str, recursive: bool, attr_set: int, attr_clr: int) -> None:
        attr = _MountAttr(attr_set, attr_clr, 0, 0)
        flags = AT_RECURSIVE if recursive else 0
        rc = self.lib.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr),
                              ctypes.sizeof(attr))
        self._check(rc, f"mount_setattr {path}")

    def prctl(self, option: int, arg: int) -> None:
        self._check(self.lib.prctl(option, arg, 0, 0, 0), f"prctl {option}")

    def drop_capabilities(self) -> None:
        for cap in range(64):
            if self.lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
                break
        header = _CapHeader(0x20080522, 0)
        data = (_CapData * 2)()
        self._check(self.lib.capset(ctypes.byref(header), data), "capset")


def _readonly_fallback(libc: _Libc) -> None:
    """Remount every mount read-only one by one (kernels before 5.12 have no mount_setattr)."""
    keep = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
    with open("/proc/self/mountinfo") as handle:
        entries = [line.split() for line in handle]
    for fields in sorted(entries, key=lambda f: f[4].count("/")):
        target = fields[4].replace("\\040", " ")
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        for option in fields[5].split(","):
            flags |= keep.get(option, 0)
        try:
            libc.mount(None, target, None, flags, None)
        except OSError:
            if target == "/":
                raise


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def isolate(config: dict[str, Any]) -> dict[str, Any]:
    """Enter fresh namespaces and set up the filesystem view; returns what was achieved.

    Raises Refused when something required failed and `allow_unisolated` is false."""
    root = os.geteuid() == 0
    report: dict[str, Any] = {"net": False, "mount": False, "readonly": False, "pid": False, "userns": False,
                              "uid": "per-run" if root else "unchanged", "hidden": [], "problems": []}
    allow = bool(config.get("allow_unisolated"))
    if config.get("isolate") is False:
        report["problems"].append("namespaces switched off by the operator")
        return report
    global _LIBC
    try:
        libc = _LIBC = _Libc()
        if config.get("simulate_failure"):  # test hook: behave as a platform without namespaces
            raise OSError(1, "unshare: Operation not permitted (simulated)")
        flags = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        outer_uid, outer_gid = os.geteuid(), os.getegid()
        libc.unshare(flags if root else flags | CLONE_NEWUSER)
        if not root:
            with open("/proc/self/setgroups", "w") as handle:
                handle.write("deny")
            with open("/proc/self/uid_map", "w") as handle:
                handle.write(f"0 {outer_uid} 1")
            with open("/proc/self/gid_map", "w") as handle:
                handle.write(f"0 {outer_gid} 1")
            report["userns"] = True
            report["uid"] = "userns, no capabilities"
        report["net"] = report["pid"] = True
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)
        report["mount"] = True
        prefix = os.path.realpath(sys.base_prefix)
        if _inside(prefix, "/tmp"):
            raise OSError(22, f"the interpreter lives under /tmp ({prefix}), which the sandbox replaces")
        uid = int(config["uid"]) if root else 0
        size_mb = int(config.get("tmpfs_mb", 16))
        libc.mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
                   f"size={size_mb}m,nr_inodes=4096,mode=0700,uid={uid},gid={uid}")
        for path in sorted({os.path.realpath(p) for p in config.get("hidden_paths", [])}, key=len):
            if path in _NEVER_HIDDEN or _inside(path, "/tmp") or _inside("/tmp", path) or not os.path.isdir(path):
                continue
            if any(_inside(path, done) for done in report["hidden"]):
                continue
            keep = _inside(prefix, path)
            if keep:
                os.mkdir("/tmp/.keep", 0o700)
                libc.mount(prefix, "/tmp/.keep", None, MS_BIND | MS_REC, None)
            libc.mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=256,mode=0755")
            if keep:
                inner = path.rstrip("/") + prefix[len(path.rstrip("/")):]
                os.makedirs(inner, 0o755, exist_ok=True)
                libc.mount("/tmp/.keep", inner, None, MS_BIND | MS_REC, None)
                libc.umount("/tmp/.keep")
                os.rmdir("/tmp/.keep")
            report["hidden"].append(path)
        try:
            libc.mount_setattr("/", True, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0)
        except OSError as exc:
            if exc.errno != 38:  # ENOSYS: a kernel before 5.12
                raise
            _readonly_fallback(libc)
            libc.mount(None, "/tmp", None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        else:
            libc.mount_setattr("/tmp", False, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_RDONLY)
            # /dev/null, /dev/zero, /dev/urandom must open; the rest of /dev is root-only by mode.
            libc.mount_setattr("/dev", False, 0, MOUNT_ATTR_NODEV)
        report["readonly"] = True
        os.chdir("/tmp")
    except (OSError, ValueError) as exc:
        report["problems"].append(str(exc))
        if not allow:
            raise Refused(f"isolation unavailable: {exc}") from None
    if not report["readonly"] and config.get("workdir"):
        os.chdir(config["workdir"])
    return report


_NEVER_HIDDEN = frozenset({"/", "/proc", "/dev", "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc"})


def confine(config: dict[str, Any], report: dict[str, Any], libc: _Libc) -> None:
    """P1, before any job code: fresh /proc, resource limits, an unprivileged identity."""
    import resource

    if report["pid"] and report["mount"]:
        try:
            libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, None)
        except OSError as exc:
            report["problems"].append(f"no private /proc: {exc}")
    cpu = max(1, int(config.get("cpu_s", 2)))
    limits = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (int(config.get("memory_mb", 256)) << 20,) * 2,
        resource.RLIMIT_NPROC: (int(config.get("max_procs", 16)),) * 2,
        resource.RLIMIT_FSIZE: (int(config.get("max_file_mb", 8)) << 20,) * 2,
        resource.RLIMIT_NOFILE: (int(config.get("max_open_files", 64)),) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))
    if report["userns"]:  # root inside the user namespace only: drop every capability
        libc.drop_capabilities()
    elif os.geteuid() == 0:  # a uid of its own: RLIMIT_NPROC applies, no real user's files are writable
        uid = int(config["uid"])
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
    os.umask(0o077)


# --------------------------------------------------------------------------- the job (P1)


class CallTimeout(BaseException):
    """Raised in the answer's code when one case runs past its time (BaseException: `except
    Exception` in the answer does not swallow it)."""


MAX_NODES = 20_000
_SEQUENCE_TAGS: dict[type, str] = {list: "l", tuple: "t", set: "set", frozenset: "fs"}
MAX_STR = 20_000


def encode(value: Any, budget: list[int] | None = None, depth: int = 0) -> list[Any]:
    """A tagged tree of builtin types; anything else (or too big) is ["o", type name, repr].

    Only exact builtin types are walked, so no method the answer defined runs here except the
    final `repr` of an opaque object (under the case's timer)."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    kind = type(value)
    if budget[0] < 0 or depth > 50:
        return ["o", kind.__name__, "<too big>"]
    if value is None:
        return ["n"]
    if kind is bool:
        return ["b", value]
    if kind is int:
        return ["i", value] if value.bit_length() < 10_000 else ["o", "int", "<huge int>"]
    if kind is float:
        return ["f", repr(value)]
    if kind is str:
        return ["s", value] if len(value) <= MAX_STR else ["o", "str", repr(value[:200]) + "..."]
    if kind is bytes:
        return ["y", value.decode("latin-1")] if len(value) <= MAX_STR else ["o", "bytes", "<long>"]
    if kind in (list, tuple, set, frozenset):
        tag = _SEQUENCE_TAGS[kind]
        if len(value) > MAX_NODES:
            return ["o", kind.__name__, "<too long>"]
        return [tag, [encode(item, budget, depth + 1) for item in value]]
    if kind is dict:
        if len(value) > MAX_NODES:
            return ["o", "dict", "<too long>"]
        return ["d", [[encode(k, budget, depth + 1), encode(v, budget, depth + 1)] for k, v in value.items()]]
    try:
        text = repr(value)
    except BaseException as exc:
        if isinstance(exc, CallTimeout):
            raise
        text = f"<repr failed: {type(exc).__name__}>"
    return ["o", kind.__name__, text[:2000]]


class _Capture:
    """A text stream that keeps at most `limit` characters (the rest is counted, not kept)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.dropped = 0

    def write(self, text: str) -> int:
        text = str(text)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self.parts)


class _CappedBytes(io.RawIOBase):
    """A writable binary stream that keeps the first `limit` bytes and drops the rest."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.data = bytearray()
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += data[:room]
        return len(data)

    def getvalue(self) -> bytes:
        return bytes(self.data)


def _exit(code: Any = None) -> None:
    raise SystemExit(code)


class Harness:
    def __init__(self, job: dict[str, Any], result_fd: int) -> None:
        self.job = job
        self.fd = result_fd
        self.code: str = job["code"]
        self.lines = self.code.splitlines()
        self.call_timeout = float(job.get("call_timeout_s", 0.5))
        self.capture_limit = int(job.get("capture_chars", 4096))
        self.flags = 0
        self.ns: dict[str, Any] = {}

    # -- timing
    def _arm(self, seconds: float) -> None:
        signal.setitimer(signal.ITIMER_REAL, max(0.001, seconds))

    @staticmethod
    def _disarm() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    # -- classification of an exception: where was it raised?
    def origin(self, exc: BaseException) -> str:
        if isinstance(exc, CallTimeout):
            return "timeout"
        if isinstance(exc, MemoryError | RecursionError):
            return "resource"
        tb = exc.__traceback__
        last = None
        while tb is not None:
            last = tb
            tb = tb.tb_next
        if last is None:
            return "other"
        filename = last.tb_frame.f_code.co_filename
        if filename == "<answer>":
            line = self.lines[last.tb_lineno - 1].strip() if 0 < last.tb_lineno <= len(self.lines) else ""
            return "deliberate" if line.startswith(("raise", "assert")) else "answer"
        if filename == "<case>":
            return "case"
        return "library"

    def describe(self, exc: BaseException) -> dict[str, Any]:
        try:
            message = str(exc)[:300]
        except BaseException:
            message = ""
        return {"type": type(exc).__name__, "msg": message, "origin": self.origin(exc)}

    def load(self, name: str) -> dict[str, Any]:
        """Execute the answer's code statement by statement as module `name`; a statement that
        raises is reported and skipped (a demo call at the bottom must not hide the functions)."""
        module = types.ModuleType(name)
        sys.modules[name] = module
        ns = module.__dict__
        ns["__builtins__"] = builtins
        tree = ast.parse(self.code, "<answer>")
        flags = 0
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                import __future__

                for alias in node.names:
                    feature = getattr(__future__, alias.name, None)
                    if feature is not None:
                        flags |= feature.compiler_flag
        self.flags = flags
        errors: list[dict[str, Any]] = []
        deadline = self.call_timeout * 4
        for node in tree.body:
            code = compile(ast.Module([node], []), "<answer>", "exec", flags, dont_inherit=True)
            started = time.monotonic()
            try:
                self._arm(deadline)
                exec(code, ns)
            except BaseException as exc:
                self._disarm()
                if isinstance(exc, SystemExit):
                    errors.append({"line": node.lineno, "type": "SystemExit", "msg": "", "origin": "answer"})
                    continue
                errors.append({"line": node.lineno, **self.describe(exc)})
                if isinstance(exc, CallTimeout):
                    break
            finally:
                self._disarm()
            deadline = max(0.05, deadline - (time.monotonic() - started))
        return {"errors": errors[:5]}

    def _evaluate(self, source: str, mode: str, timeout: float) -> tuple[Any, str]:
        stdout = _Capture(self.capture_limit)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stdout  # type: ignore[assignment]
        try:
            code = compile(source, "<case>", mode, self.flags, dont_inherit=True)
            self._arm(timeout)
            value = None
            if mode == "eval":
                value = eval(code, self.ns)
            else:
                exec(code, self.ns)
        finally:
            self._disarm()
            sys.stdout, sys.stderr = saved
        return value, stdout.getvalue()

    def _encode(self, value: Any) -> list[Any]:
        try:
            self._arm(self.call_timeout)
            return encode(value)
        finally:
            self._disarm()

    def run_case(self, case: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"case": case["id"], "ok": True}
        for module in case.get("imports", ()):
            if module not in self.ns:
                with contextlib.suppress(ImportError):
                    self.ns[module] = __import__(module)
        started = time.perf_counter()
        timeout = float(case.get("call_timeout_s") or self.call_timeout)
        try:
            if case["kind"] == "stdin":
                result["out"] = self.run_program(case["input"], timeout)
            else:
                value, out = self._evaluate(case["source"], "eval" if case["kind"] == "eval" else "exec", timeout)
                result["value"] = self._encode(value)
                result["out"] = out
                if case.get("expect_source"):
                    expected, _ = self._evaluate(case["expect_source"], "eval", timeout)
                    result["expect"] = self._encode(expected)
        except BaseException as exc:
            result["ok"] = False
            result["exc"] = self.describe(exc)
        result["ms"] = round((time.perf_counter() - started) * 1000, 3)
        return result

    def run_program(self, stdin_text: str, timeout: float) -> str:
        """Run the whole answer as `__main__` with `stdin_text` on stdin; returns what it printed."""
        out_bytes = _CappedBytes(self.capture_limit * 4)
        stdout = io.TextIOWrapper(out_bytes, encoding="utf-8", write_through=True)  # type: ignore[type-var]
        stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode()), encoding="utf-8")
        saved = sys.stdin, sys.stdout, sys.stderr
        module = types.ModuleType("__main__")
        ns = module.__dict__
        ns["__builtins__"] = builtins
        saved_main = sys.modules.get("__main__")
        sys.modules["__main__"] = module
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, _Capture(0)  # type: ignore[assignment]
        try:
            code = compile(self.code, "<answer>", "exec", dont_inherit=True)
            self._arm(timeout)
            try:
                exec(code, ns)
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    raise
        finally:
            self._disarm()
            sys.stdin, sys.stdout, sys.stderr = saved
            if saved_main is not None:
                sys.modules["__main__"] = saved_main
        return out_bytes.getvalue().decode("utf-8", "replace")

    def run(self) -> None:
        def on_alarm(signum: int, frame: Any) -> None:
            raise CallTimeout()

        signal.signal(signal.SIGALRM, on_alarm)
        for name in ("exit", "quit"):  # added by `site`, which -S leaves out; answers call them
            setattr(builtins, name, _exit)
        emit(self.fd, {"started": True})
        cases = self.job.get("cases", [])
        if any(case["kind"] != "stdin" for case in cases):
            loaded = self.load("__answer__")
            self.ns = sys.modules["__answer__"].__dict__
            emit(self.fd, {"loaded": loaded})
        hangs = 0
        edge_hung = False
        for case in cases:
            if hangs >= MAX_HANGS or (edge_hung and case.get("edge")):
                emit(self.fd, {"case": case["id"], "ok": False, "skipped": True})
                continue
            result = self.run_case(case)
            if (result.get("exc") or {}).get("origin") == "timeout":
                if case.get("edge"):
                    edge_hung = True
                else:
                    hangs += 1
            emit(self.fd, result)
        emit(self.fd, {"end": True})


def run_job(job: dict[str, Any], config: dict[str, Any], report: dict[str, Any], result_fd: int) -> None:
    """P1: its own process group (P0's is out of reach: `kill(0, ...)` can only hit the job's own
    processes), confine, detach from stdio, run."""
    os.setpgid(0, 0)
    confine(config, report, _LIBC or _Libc())
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over RLIMIT_FSIZE: an OSError, not a kill

    def on_cpu(signum: int, frame: Any) -> None:
        os._exit(EXIT_CPU)

    signal.signal(signal.SIGXCPU, on_cpu)  # as PID 1 a default-action SIGXCPU would be ignored
    sys.setrecursionlimit(2000)
    Harness(job, result_fd).run()


def read_job(limit: int) -> dict[str, Any] | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError("job too large")
        if chunk.endswith(b"\n"):
            break
    data = b"".join(chunks)
    if not data.strip():
        return None
    job: dict[str, Any] = json.loads(data)
    return job


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
        report = isolate(config)
    except Refused as exc:
        emit(out, {"refused": str(exc)})
        return 3
    emit(out, {"ready": True, "isolation": report})
    job = read_job(MAX_JOB_BYTES)
    if job is None:
        return 0
    result_fd = os.dup(out)
    if result_fd < RESULT_FD_MIN:
        moved = os.dup2(result_fd, RESULT_FD_MIN)
        os.close(result_fd)
        result_fd = moved
    pid = os.fork()
    if pid == 0:
        try:
            run_job(job, config, report, result_fd)
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                emit(result_fd, {"harness_error": f"{type(exc).__name__}: {exc}"[:300]})
        os._exit(0)
    os.close(result_fd)
    os.close(0)
    ending = supervise(pid, float(job.get("timeout_s", 2.0)))
    emit(out, {"exit": ending})
    os._exit(0)  # the report is out: no interpreter teardown for the gateway to wait on


if __name__ == "__main__":
    sys.exit(main())
