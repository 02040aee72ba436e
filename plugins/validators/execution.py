"""The execution validator: run the answer's code on the prompt's own examples, in a sandbox.

For code tasks (`ExecutionConfig.enabled_task_types`; off by default) it takes the checkable
examples from the last user message (`examples.py`: doctests, asserts, `f(x) -> y` prose,
Input/Output pairs), assembles a program from the answer (a `Language` strategy; Python is the
one there is), runs it in `plugins.sandbox` and scores the share of examples that pass:

    score = 10 * passed / examples           (all pass: 10, none: 0)
            - min(3, 1.5 * edge crashes)     (only when at least one example passes)

No examples, no runnable code, a busy pool, no isolation, no time left: it abstains (no evidence
either way), it never guesses.

Edge inputs. From the first example of each function whose arguments are literals, each argument
in turn is replaced by an edge value of its own type: [] and a one-element list, "" and one
character, 0 and a negative number, (), {}, set(). An edge run *crashes* when it raises from
anywhere but a `raise` or `assert` statement of the answer's own (an IndexError on `xs[0]`, a
ZeroDivisionError, a ValueError from `max([])`, a RecursionError) or hangs; an exception the
answer raises on purpose is a documented precondition and costs nothing. Edge values may be
outside the task's domain, hence a partial penalty (two crashes take an all-passing answer to 7).

Event loop. `Scorer.score` is synchronous and runs on the event loop, and a sandbox run takes
milliseconds to seconds, so the work happens in `await precheck(request, response, deadline_s=)`
(the pool's own threads; never the loop), which the cascade awaits before `scorer.score`; `score`
then returns the stored result. `score` without a precheck runs the check itself when no event
loop is running in the thread (scripts, offline evaluation), and abstains when one is.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from plugins.sandbox import RunResult, Sandbox, SandboxBusy, SandboxConfig, SandboxError, SandboxRefused, SandboxStats
from plugins.sandbox.runner import DEFAULT_HIDDEN
from plugins.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
from plugins.validators.examples import BUILTIN_NAMES, Example, extract_examples, json_literals, literal
from plugins.validators.text import analyze

EDGE_PENALTY = 1.5
MAX_EDGE_PENALTY = 3.0
EDGE_CALL_TIMEOUT_S = 0.2
MAX_CODE_CHARS = 100_000
INLINE_PLAN_CHARS = 4000
"""Answers shorter than this are planned on the event loop (well under a millisecond)."""
START_MARGIN_S = 0.25
"""A check is not started unless the request has its timeout plus this much time left."""


class ExecutionConfig(BaseModel):
    """`quality.execution` in the gateway config. Off until `enabled_task_types` names task
    types ("*": any request that carries examples)."""

    model_config = ConfigDict(extra="forbid")

    enabled_task_types: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    call_timeout_s: float = Field(default=0.5, gt=0, le=60)
    cpu_s: int = Field(default=2, ge=1, le=60)
    memory_mb: int = Field(default=256, ge=32, le=16384)
    max_procs: int = Field(default=16, ge=1, le=4096)
    max_output_kb: int = Field(default=64, ge=1, le=65536)
    max_file_mb: int = Field(default=8, ge=1, le=1024)
    pool_size: int = Field(default=2, ge=1, le=64)
    queue_wait_s: float = Field(default=0.25, ge=0, le=60)
    warm: bool = True
    edge_cases: bool = True
    max_edge_cases: int = Field(default=8, ge=0, le=32)
    allow_unisolated: bool = False
    hidden_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_HIDDEN))

    def sandbox_config(self) -> SandboxConfig:
        return SandboxConfig(
            timeout_s=self.timeout_s, cpu_s=self.cpu_s, memory_mb=self.memory_mb, max_procs=self.max_procs,
            max_output_kb=self.max_output_kb, max_file_mb=self.max_file_mb, pool_size=self.pool_size,
            warm=self.warm, allow_unisolated=self.allow_unisolated, hidden_paths=tuple(self.hidden_paths),
        )


# --------------------------------------------------------------------------- plans and checks


@dataclass(frozen=True, slots=True)
class Check:
    """How to judge one case's result. `compare`: output | value | true | tokens | none."""

    id: int
    label: str
    compare: str
    expected_text: str | None = None
    expected: tuple[bool, Any] = (False, None)  # (known in advance, value)
    scored: bool = True
    edge: bool = False
    lenient: bool = False  # a list and a tuple with the same items are equal (JSON-shaped examples)


@dataclass(slots=True)
class Plan:
    """A job for the sandbox and how to judge its results."""

    language: str
    code: str
    cases: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return sum(1 for check in self.checks if check.scored)

    def job(self, config: ExecutionConfig) -> dict[str, Any]:
        return {"language": self.language, "code": self.code, "cases": self.cases,
                "timeout_s": config.timeout_s, "call_timeout_s": config.call_timeout_s}


class Language(Protocol):
    """One programming language: turns a prompt's examples and an answer into a `Plan` (or the
    reason it cannot, to abstain with). The sandbox's harness runs the plan's cases."""

    name: str

    def plan(self, prompt: str, answer: str, examples: Sequence[Example], config: ExecutionConfig) -> Plan | str: ...


# --------------------------------------------------------------------------- Python

_PY_TAGS = frozenset({"python", "py", "python3", "py3", "", "pycon"})
_READS_STDIN = re.compile(r"\binput\s*\(|sys\.stdin|open\(\s*0\b|\bfileinput\b")
_PROMPT_CODE_START = re.compile(r"^(?:from\s+\S+\s+import|import\s|def\s|class\s|@)", re.MULTILINE)


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code, "<answer>")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _is_stub(node: ast.stmt) -> bool:
    """A function whose body is only a docstring, `pass` or `...`: a signature to complete."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in node.body)


def _named_in_prompt(name: str, prompt: str) -> bool:
    """Does the prompt require this name (a signature, `name`, "function name"), beyond using it
    in an example?"""
    escaped = re.escape(name)
    return re.search(
        rf"\bdef\s+{escaped}\s*\(|`{escaped}(?:\(|`)|\b(?:function|method|called|named)\s+[`'\"]?{escaped}\b",
        prompt,
    ) is not None


def _arity_fits(node: ast.FunctionDef | ast.AsyncFunctionDef, count: int, method: bool) -> bool:
    args = node.args
    positional = [*args.posonlyargs, *args.args][1 if method else 0:]
    required = len(positional) - len(args.defaults)
    return required <= count and (count <= len(positional) or args.vararg is not None)


class PythonLanguage:
    name = "python"

    # ---- where the code is
    def prompt_code(self, prompt: str) -> str | None:
        """The Python in the prompt: its last fenced Python block, the whole prompt, or the prompt
        from its first `def`/`import`/`class` line on, whichever parses first."""
        for block in reversed(analyze(prompt).blocks):
            if block.closed and block.lang in _PY_TAGS and _parses(block.code) is not None:
                return block.code
        if "```" not in prompt and _parses(prompt) is not None:
            return prompt
        start = _PROMPT_CODE_START.search(prompt)
        if start is not None and "```" not in prompt[start.start():]:
            code = prompt[start.start():]
            if _parses(code) is not None:
                return code
        return None

    def candidates(self, answer: str, prompt_code: str | None) -> list[tuple[str, ast.Module]]:
        """Programs the answer may mean, most likely first: each Python block (last first), all
        of them together, the whole answer, and the prompt's signature continued by the answer
        (HumanEval: the answer is the function's body). The prompt's definitions (imports,
        helpers, the stub) go first, so the answer's own definitions replace the stub's."""
        texts: list[str] = []
        blocks = [b.code for b in analyze(answer).blocks if b.closed and b.lang in _PY_TAGS and b.code.strip()]
        texts += reversed(blocks)
        if len(blocks) > 1:
            texts.append("\n\n".join(blocks))
        if not blocks and "```" not in answer:
            texts.append(answer)
        prelude = ""
        stub_tree = _parses(prompt_code) if prompt_code else None
        if stub_tree is not None:
            keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                    ast.AnnAssign)
            prelude = "\n\n".join(ast.unparse(node) for node in stub_tree.body if isinstance(node, keep))
        found: list[tuple[str, ast.Module]] = []
        for text in texts:
            if len(text) > MAX_CODE_CHARS:
                continue
            tree = _parses(text)
            if tree is None:
                continue
            if prelude:
                combined = f"{prelude}\n\n\n{text}"
                combined_tree = _parses(combined)
                if combined_tree is not None:
                    found.append((combined, combined_tree))
                    continue
            found.append((text, tree))
        if prompt_code and stub_tree is not None and stub_tree.body and _is_stub(stub_tree.body[-1]):
            bodies = blocks[:1] if blocks else ([answer] if "```" not in answer else [])
            for body in bodies:
                body = body.strip("\n")
                indented = "\n".join(("    " + line) if line.strip() else line for line in body.splitlines())
                for variant in (body, indented):
                    combined = prompt_code.rstrip() + "\n" + variant + "\n"
                    tree = _parses(combined)
                    if tree is not None and len(combined) <= MAX_CODE_CHARS:
                        found.append((combined, tree))
                        break
        return found

    # ---- the plan
    def plan(self, prompt: str, answer: str, examples: Sequence[Example], config: ExecutionConfig) -> Plan | str:
        prompt_code = self.prompt_code(prompt)
        found = self.candidates(answer, prompt_code)
        if not found:
            return "no runnable Python in the answer"
        plain = [e for e in examples if e.kind != "io"]
        needed = {name for e in plain if e.scored for name in e.names}
        required = {name for e in plain if e.style in ("assert", "doctest") for name in e.names}
        chosen: tuple[str, ast.Module] | None = None
        if needed:
            chosen = next((c for c in found if needed <= _defined(c[1])), None) \
                or next((c for c in found if needed & _defined(c[1])), None)
            if chosen is None:
                missing = sorted(needed)
                if not all(name in required or _named_in_prompt(name, prompt) for name in missing):
                    plain = []  # examples about functions the answer may legitimately not have
                else:
                    chosen = found[0]
        code, tree = chosen or found[0]
        plan = Plan(self.name, code)
        for example in plain:
            self._add_example(plan, example)
        io_examples = [e for e in examples if e.kind == "io"]
        if io_examples:
            self._add_io(plan, io_examples, tree, code, prompt_code)
        if not plan.scored:
            return "no example applies to the answer's code"
        if config.edge_cases and config.max_edge_cases:
            self._add_edges(plan, config.max_edge_cases)
        return plan

    @staticmethod
    def _add(plan: Plan, case: dict[str, Any], check_fields: dict[str, Any]) -> None:
        case_id = len(plan.cases)
        plan.cases.append({"id": case_id, **case})
        plan.checks.append(Check(id=case_id, **check_fields))

    def _add_example(self, plan: Plan, example: Example) -> None:
        label = " ".join(example.source.split())[:80]
        case: dict[str, Any] = {"kind": example.kind, "source": example.source, "imports": list(example.imports)}
        if not example.scored:
            self._add(plan, case, {"label": label, "compare": "none", "scored": False})
        elif example.compare == "output":
            self._add(plan, case, {"label": label, "compare": "output", "expected_text": example.expected})
        elif example.compare == "value":
            known, value = literal(example.expected or "")
            if not known:
                case["expect_source"] = example.expected
            self._add(plan, case, {"label": label, "compare": "value", "expected_text": example.expected,
                                   "expected": (known, value)})
        else:
            self._add(plan, case, {"label": label, "compare": "true"})

    def _add_io(self, plan: Plan, examples: list[Example], tree: ast.Module, code: str,
                prompt_code: str | None) -> None:
        reads_stdin = _READS_STDIN.search(code) is not None
        calls = [(e, _call_args(e.source), literal(e.expected or "")) for e in examples]
        callable_pairs = [(e, args, out) for e, args, out in calls if args is not None and out[0]]
        entry = _entry_point(tree, prompt_code, len(callable_pairs[0][1]) if callable_pairs else 0) \
            if callable_pairs else None
        if entry is not None and len(callable_pairs) == len(calls):
            for example, args, (_, expected) in callable_pairs:
                assert args is not None
                source = f"{entry}({', '.join(map(repr, args))})"
                self._add(plan, {"kind": "eval", "source": source},
                          {"label": source[:80], "compare": "value", "expected_text": example.expected,
                           "expected": (True, expected), "lenient": True})
        elif reads_stdin:
            for example in examples:
                label = "input " + " ".join(example.source.split())[:60]
                self._add(plan, {"kind": "stdin", "input": example.source + "\n"},
                          {"label": label, "compare": "tokens", "expected_text": example.expected})

    def _add_edges(self, plan: Plan, limit: int) -> None:
        seen_sources = {case.get("source") for case in plan.cases}
        done_callees: set[str] = set()
        edges: list[str] = []
        for case, check in zip(list(plan.cases), list(plan.checks), strict=True):
            if not check.scored or case["kind"] != "eval":
                continue
            call = _literal_call(case["source"])
            if call is None or call[0] in done_callees:
                continue
            callee, args, kwargs = call
            done_callees.add(callee)
            for position, value in enumerate(args):
                for edge in _edge_values(value):
                    new_args = [*args[:position], edge, *args[position + 1:]]
                    parts = [repr(a) for a in new_args] + [f"{k}={v!r}" for k, v in kwargs]
                    source = f"{callee}({', '.join(parts)})"
                    if source not in seen_sources:
                        seen_sources.add(source)
                        edges.append(source)
        for source in edges[:limit]:
            self._add(plan, {"kind": "eval", "source": source, "edge": True, "call_timeout_s": EDGE_CALL_TIMEOUT_S},
                      {"label": source[:80], "compare": "none", "scored": False, "edge": True})


def _call_args(text: str) -> tuple[Any, ...] | None:
    """An Input text as literal positional arguments (`nums = [2,7], target = 9`, `[1, 2]`)."""
    source = "_f(" + json_literals(", ".join(line.strip().rstrip(",") for line in text.splitlines() if line.strip())) \
        + ")"
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Call):
        return None
    try:
        return tuple(ast.literal_eval(a) for a in [*node.args, *(kw.value for kw in node.keywords)])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _entry_point(tree: ast.Module, prompt_code: str | None, count: int) -> str | None:
    """The function Input/Output pairs are about: the prompt's one signature, else the answer's
    one public function (or the one whose arity fits), else a LeetCode `Solution` method."""
    stub = _parses(prompt_code) if prompt_code else None
    for source_tree in ([stub] if stub is not None else []) + [tree]:
        functions = [n for n in source_tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and not n.name.startswith("_") and n.name != "main"]
        fitting = [n for n in functions if _arity_fits(n, count, method=False)]
        if len(functions) == 1 and fitting:
            return functions[0].name
        if len(fitting) == 1:
            return fitting[0].name
        for node in source_tree.body:
            if isinstance(node, ast.ClassDef) and node.name == "Solution":
                methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                           and not m.name.startswith("_") and _arity_fits(m, count, method=True)]
                if len(methods) == 1:
                    return f"Solution().{methods[0].name}"
    return None


def _literal_call(source: str) -> tuple[str, list[Any], list[tuple[str, Any]]] | None:
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Call) or any(kw.arg is None for kw in node.keywords):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = [(str(kw.arg), ast.literal_eval(kw.value)) for kw in node.keywords]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return ast.unparse(node.func), args, kwargs


def _edge_values(value: Any) -> list[Any]:
    kind = type(value)
    if kind is int:
        return [0, -abs(value) if value else -1]
    if kind is float:
        return [0.0, -abs(value) if value else -1.0]
    if kind in (str, list, tuple):
        return [value[:0], value[:1]] if len(value) > 1 else [value[:0]]
    if kind is dict:
        return [{}]
    if kind is set:
        return [set()]
    return []


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value that is not a plain builtin (or was too big): its type name and repr."""

    type: str
    text: str


def decode(tree: Any) -> Any:
    """The value an encoded tree (child.encode) stands for; unknown shapes are Opaque."""
    if not isinstance(tree, list) or not tree:
        return Opaque("?", repr(tree))
    tag = tree[0]
    try:
        if tag == "n":
            return None
        if tag in ("b", "i", "s"):
            return tree[1]
        if tag == "f":
            return float(tree[1])
        if tag == "y":
            return str(tree[1]).encode("latin-1")
        if tag == "l":
            return [decode(item) for item in tree[1]]
        if tag == "t":
            return tuple(decode(item) for item in tree[1])
        if tag == "set":
            return {decode(item) for item in tree[1]}
        if tag == "fs":
            return frozenset(decode(item) for item in tree[1])
        if tag == "d":
            return {decode(k): decode(v) for k, v in tree[1]}
        if tag == "o":
            return Opaque(str(tree[1]), str(tree[2]))
    except (TypeError, ValueError, IndexError):
        pass
    return Opaque("?", repr(tree)[:200])


def same(actual: Any, expected: Any, lenient: bool = False) -> bool:
    """Python's `==` on builtin values, with floats compared to 1e-9 and (lenient) a list equal to
    a tuple with the same items. An Opaque value equals only its own repr."""
    if isinstance(actual, Opaque) or isinstance(expected, Opaque):
        if isinstance(actual, Opaque) and isinstance(expected, Opaque):
            return actual == expected
        opaque, other = (actual, expected) if isinstance(actual, Opaque) else (expected, actual)
        return bool(opaque.text == repr(other))
    numbers = (int, float)
    if isinstance(actual, numbers) and isinstance(expected, numbers) and (
            isinstance(actual, float) or isinstance(expected, float)):
        if math.isnan(actual) and math.isnan(expected):
            return True
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    sequences = (list, tuple)
    if isinstance(actual, sequences) and isinstance(expected, sequences):
        if type(actual) is not type(expected) and not lenient:
            return False
        return len(actual) == len(expected) and all(same(a, e, lenient) for a, e in zip(actual, expected, strict=True))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(same(actual[k], expected[k], lenient) for k in actual)
    try:
        return bool(actual == expected)
    except Exception:
        return False


def _shown(value: Any) -> str:
    return value.text if isinstance(value, Opaque) else repr(value)


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _numbers_match(got: str, want: str) -> bool:
    try:
        return math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-6)
    except ValueError:
        return False


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def judge_case(check: Check, result: dict[str, Any] | None, problem: str | None) -> tuple[bool, str]:
    """(passed, why not) for one scored case."""
    if result is None:
        return False, f"{check.label}: {problem or 'no result'}"
    if result.get("skipped"):
        return False, f"{check.label}: skipped after earlier cases hung"
    want = check.expected_text or ""
    if not result.get("ok"):
        exc = result.get("exc") or {}
        if check.compare == "output" and want.startswith("Traceback (most recent call last)"):
            last = [line for line in want.splitlines() if line.strip()][-1]
            wanted_type = last.split(":")[0].strip().split(".")[-1]
            if exc.get("type") == wanted_type:
                return True, ""
        if exc.get("origin") == "timeout":
            return False, f"{check.label}: timed out"
        message = f": {exc.get('msg')}" if exc.get("msg") else ""
        return False, _short(f"{check.label} raised {exc.get('type', 'an error')}{message}", 120)
    if check.compare == "true":
        return True, ""
    if check.compare == "tokens":
        got_tokens, want_tokens = str(result.get("out", "")).split(), want.split()
        if len(got_tokens) == len(want_tokens) and all(
                g == w or _numbers_match(g, w) for g, w in zip(got_tokens, want_tokens, strict=True)):
            return True, ""
        return False, f"{check.label}: expected {_short(want)!r}, printed {_short(str(result.get('out', '')))!r}"
    value = decode(result.get("value"))
    if check.compare == "value":
        known, expected = check.expected
        if not known:
            expected = decode(result.get("expect"))
        if same(value, expected, check.lenient):
            return True, ""
        return False, f"{check.label}: expected {_short(_shown(expected))}, got {_short(_shown(value))}"
    out = str(result.get("out", ""))  # doctest output
    shown = out + (_shown(value) + "\n" if value is not None else "")
    if _norm(shown) == _norm(want) or " ".join(shown.split()) == " ".join(want.split()):
        return True, ""
    known, expected = literal(want)
    if known and not out and same(value, expected):
        return True, ""
    return False, f"{check.label}: expected {_short(want)}, got {_short(shown.strip()) or 'nothing'}"


def edge_crash(result: dict[str, Any] | None) -> str | None:
    """Why an edge run counts as a crash (None: it did not crash, or it says nothing)."""
    if result is None:
        return "hung"
    if result.get("ok") or result.get("skipped"):
        return None
    exc = result.get("exc") or {}
    if exc.get("origin") in ("answer", "library", "resource", "timeout"):
        return "hung" if exc.get("origin") == "timeout" else str(exc.get("type", "error"))
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: int
    total: int
    failures: tuple[str, ...]
    crashes: tuple[str, ...]
    problem: str | None

    @property
    def score(self) -> float:
        share = 10.0 * self.passed / self.total
        if self.passed and self.crashes:
            share -= min(MAX_EDGE_PENALTY, EDGE_PENALTY * len(self.crashes))
        return round(max(0.0, share), 1)


def judge(plan: Plan, run: RunResult) -> Verdict:
    problem = run.problem()
    passed = total = 0
    failures: list[str] = []
    crashes: list[str] = []
    for check in plan.checks:
        result = run.cases.get(check.id)
        if check.scored:
            total += 1
            ok, why = judge_case(check, result, problem)
            passed += ok
            if not ok:
                failures.append(why)
        elif check.edge and passed:
            crash = edge_crash(result) if (result is not None or run.finished) else None
            if crash is not None:
                crashes.append(f"{check.label} {crash}")
    return Verdict(passed, total, tuple(failures), tuple(crashes), problem)


def _missing_module(run: RunResult) -> str | None:
    """The message of a ModuleNotFoundError the answer's code met, if any."""
    errors = list((run.loaded or {}).get("errors") or [])
    errors += [case.get("exc") or {} for case in run.cases.values()]
    for error in errors:
        if isinstance(error, dict) and error.get("type") == "ModuleNotFoundError":
            return str(error.get("msg") or "a module")[:80]
    return None


# --------------------------------------------------------------------------- the validator


class ExecutionValidator:
    """Runs the answer on the prompt's examples in the sandbox (see the module docstring)."""

    name = "execution"
    default_weight = 3.0
    MAX_STORED = 256

    def __init__(self, config: ExecutionConfig | None = None, *, sandbox: Sandbox | None = None,
                 languages: Sequence[Language] | None = None) -> None:
        self.config = config or ExecutionConfig()
        self.languages: tuple[Language, ...] = tuple(languages or (PythonLanguage(),))
        self.stats = SandboxStats()
        """Per check (extraction, run, judging): outcome counts and cost in ms."""
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self._done: OrderedDict[int, tuple[ChatResponse, ValidatorResult, float]] = OrderedDict()

    @property
    def sandbox(self) -> Sandbox:
        with self._lock:
            if self._sandbox is None:
                self._sandbox = Sandbox(self.config.sandbox_config())
            return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()

    def applies(self, request: ChatRequest) -> bool:
        enabled = self.config.enabled_task_types
        return bool(enabled) and ("*" in enabled or (request.task_type or "") in enabled)

    # ---- planning (cheap, on the caller's thread)
    def plan(self, request: ChatRequest, response: ChatResponse) -> Plan | ValidatorResult:
        if not self.applies(request):
            return ValidatorResult.abstain(self.name, "not a code task with execution enabled")
        if not response.text.strip():
            return ValidatorResult.abstain(self.name, "no answer text")
        prompt = request.last_user_text()
        examples = extract_examples(prompt)
        if not examples:
            return ValidatorResult.abstain(self.name, "no checkable examples in the prompt")
        reasons: list[str] = []
        for language in self.languages:
            planned = language.plan(prompt, response.text, examples, self.config)
            if isinstance(planned, Plan):
                return planned
            reasons.append(planned)
        return ValidatorResult.abstain(self.name, "; ".join(reasons) or "no language applies")

    def _result(self, plan: Plan, run: RunResult, cost_ms: float) -> ValidatorResult:
        missing = _missing_module(run)
        if missing is not None:  # the sandbox has the standard library only: not the answer's fault
            self.stats.record("missing_module", cost_ms)
            return ValidatorResult.abstain(self.name, f"needs a module the sandbox lacks ({missing}); {cost_ms:.0f} ms")
        verdict = judge(plan, run)
        parts = [f"{verdict.passed}/{verdict.total} examples pass"]
        if verdict.failures:
            parts.append(verdict.failures[0])
        if verdict.crashes:
            parts.append(f"edge input crash: {', '.join(verdict.crashes[:2])}")
        if verdict.problem and verdict.passed < verdict.total:
            parts.append(verdict.problem)
        parts.append(f"{cost_ms:.0f} ms")
        self.stats.record("pass" if verdict.passed == verdict.total else "fail", cost_ms)
        return ValidatorResult.of(self.name, verdict.score, "; ".join(parts)[:300],
                                  passed=verdict.passed == verdict.total and verdict.score >= 5.0)

    def _abstain(self, reason: str, outcome: str, started: float) -> ValidatorResult:
        cost_ms = (time.perf_counter() - started) * 1000
        self.stats.record(outcome, cost_ms)
        return ValidatorResult.abstain(self.name, f"{reason} ({cost_ms:.0f} ms)")

    # ---- the async path (the cascade)
    async def precheck(self, request: ChatRequest, response: ChatResponse, *,
                       deadline_s: float | None = None) -> ValidatorResult:
        """Run the check without blocking the event loop; the result is kept for `score`.
        `deadline_s`: the request's remaining time; too little of it and the check abstains."""
        started = time.perf_counter()
        with self._lock:
            entry = self._done.get(id(response))
        if entry is not None and entry[0] is response:
            return entry[1]  # already checked (prechecks are idempotent per answer)
        if len(response.text) < INLINE_PLAN_CHARS:
            planned = self.plan(request, response)  # ~0.1 ms for a typical answer
        else:  # parsing a long answer's candidates takes milliseconds: not on the loop
            planned = await asyncio.to_thread(self.plan, request, response)
        if isinstance(planned, ValidatorResult):
            result = planned
        elif deadline_s is not None and deadline_s < self.config.timeout_s + START_MARGIN_S:
            result = self._abstain("not enough time left for a sandbox run", "no_time", started)
        else:
            wait = self.config.queue_wait_s
            if deadline_s is not None:
                wait = max(0.0, min(wait, deadline_s - self.config.timeout_s - START_MARGIN_S))
            try:
                run = await self.sandbox.arun(planned.job(self.config), wait_s=wait)
            except SandboxBusy:
                result = self._abstain("sandbox busy", "busy", started)
            except SandboxRefused as exc:
                result = self._abstain(f"sandbox refused: {exc}"[:200], "refused", started)
            except SandboxError as exc:
                result = self._abstain(f"sandbox error: {exc}"[:200], "error", started)
            else:
                result = self._result(planned, run, (time.perf_counter() - started) * 1000)
        self._store(response, result, (time.perf_counter() - started) * 1000)
        return result

    # ---- the sync path (Scorer.score)
    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        stored = self._take(response)
        if stored is not None:
            return stored
        if not self.applies(request):
            return ValidatorResult.abstain(self.name, "not a code task with execution enabled")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.check_blocking(request, response)
        return ValidatorResult.abstain(self.name, "not prechecked (a sandbox run would block the event loop)")

    def check_blocking(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        """The whole check in this thread (never call it on an event loop)."""
        started = time.perf_counter()
        planned = self.plan(request, response)
        if isinstance(planned, ValidatorResult):
            return planned
        try:
            run = self.sandbox.run(planned.job(self.config), wait_s=self.config.queue_wait_s)
        except SandboxBusy:
            return self._abstain("sandbox busy", "busy", started)
        except SandboxRefused as exc:
            return self._abstain(f"sandbox refused: {exc}"[:200], "refused", started)
        except SandboxError as exc:
            return self._abstain(f"sandbox error: {exc}"[:200], "error", started)
        return self._result(planned, run, (time.perf_counter() - started) * 1000)

    # ---- results between precheck and score
    def _store(self, response: ChatResponse, result: ValidatorResult, cost_ms: float) -> None:
        with self._lock:
            self._done[id(response)] = (response, result, cost_ms)
            while len(self._done) > self.MAX_STORED:
                self._done.popitem(last=False)

    def _take(self, response: ChatResponse) -> ValidatorResult | None:
        with self._lock:
            entry = self._done.get(id(response))
            if entry is None or entry[0] is not response:
                return None
            del self._done[id(response)]
            return entry[1]

    def cost_ms(self, response: ChatResponse) -> float | None:
        """The cost of the precheck stored for `response` (before `score` takes it)."""
        with self._lock:
            entry = self._done.get(id(response))
            return entry[2] if entry is not None and entry[0] is response else None


async def run_prechecks(validators: Sequence[Any], request: ChatRequest, response: ChatResponse, *,
                        deadline_s: float | None = None) -> dict[str, float]:
    """Await the `precheck` of every validator that has one (concurrently); returns the time each
    took, in ms, by validator name (for the audit step and metrics). Never raises: a failing
    precheck leaves its validator to abstain in `score`."""
    prechecks = [(v.name, v.precheck) for v in validators if callable(getattr(v, "precheck", None))]
    if not prechecks:
        return {}

    async def timed(name: str, precheck: Any) -> tuple[str, float]:
        started = time.perf_counter()
        with contextlib.suppress(Exception):  # the validator abstains instead
            await precheck(request, response, deadline_s=deadline_s)
        return name, round((time.perf_counter() - started) * 1000, 1)

    return dict(await asyncio.gather(*(timed(name, pre) for name, pre in prechecks)))


__all__ = [
    "BUILTIN_NAMES",
    "Check",
    "ExecutionConfig",
    "ExecutionValidator",
    "Language",
    "Plan",
    "PythonLanguage",
    "Verdict",
    "decode",
    "judge",
    "run_prechecks",
    "same",
]
