"""Judging a sandbox run: decode the values the harness encoded, compare them with the expected
ones (`same`), pass or fail each scored case (`judge_case`), count the edge inputs that crashed
(`edge_crash`), and add it up to a `Verdict` whose `score` is the validator's (see `execution.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from plugins.sandbox import RunResult
from plugins.validators.examples import literal
from plugins.validators.execution_plan import Check, Plan

EDGE_PENALTY = 1.5
MAX_EDGE_PENALTY = 3.0


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value that is not a plain builtin (or was too big): its type name and repr."""

    type: str
    text: str


def decode(tree: Any) -> Any:
    """The value an encoded tree (the sandbox harness's `encode`) stands for; unknown shapes are Opaque."""
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


def evidence(plan: Plan, run: RunResult, limit: int = 20) -> tuple[dict[str, Any], ...]:
    """Each scored example as a reviewer reads it: what was run, what was expected, what came out."""
    problem = run.problem()
    out: list[dict[str, Any]] = []
    for check in plan.checks[: limit * 2]:
        if not check.scored or len(out) >= limit:
            continue
        result = run.cases.get(check.id)
        ok, why = judge_case(check, result, problem)
        got = ""
        if result is not None:
            printed = str(result.get("out", ""))
            value = result.get("value")
            got = printed + (_shown(decode(value)) if value is not None else "")
            if not result.get("ok"):
                exc = result.get("exc") or {}
                got += f"{exc.get('type', 'error')}: {exc.get('msg', '')}"
        known, expected = check.expected
        want = check.expected_text or (_shown(expected) if known else "")
        out.append({"example": _short(check.label, 200), "expected": _short(want, 300), "got": _short(got, 300),
                    "passed": ok, **({"why": why} if why else {})})
    return tuple(out)


def missing_module(run: RunResult) -> str | None:
    """The message of a ModuleNotFoundError the answer's code met, if any."""
    errors = list((run.loaded or {}).get("errors") or [])
    errors += [case.get("exc") or {} for case in run.cases.values()]
    for error in errors:
        if isinstance(error, dict) and error.get("type") == "ModuleNotFoundError":
            return str(error.get("msg") or "a module")[:80]
    return None

