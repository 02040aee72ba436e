"""The job harness (P1): load the answer's code, run each case, report as it goes.

The answer's code is executed statement by statement as module `__answer__` (a statement that
raises is reported and skipped), and each case is evaluated in that namespace, writing one
`{"case": id, ...}` line per case as it finishes (so a later hang loses nothing already measured).
A `stdin` case runs the whole answer as `__main__` with the case's input on stdin instead. Every
evaluation runs under a per-call timer (`CallTimeout`). Values are encoded as tagged trees of
builtin types only (`encode`: no method of an answer's object is trusted to compare itself); the
gateway does the comparing.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import signal
import sys
import time
import types
from typing import Any

from .protocol import emit

MAX_HANGS = 2
"""After this many cases ran out of time the rest are skipped (reported as such): an answer that
hangs on its examples has shown what it does, and the job ends well before its wall limit."""


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
        sys.stdout = sys.stderr = stdout
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
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, _Capture(0)
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
