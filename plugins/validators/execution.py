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

Modules: this one holds the validator and the precheck orchestration; `execution_plan.py` the
config, `Plan`/`Check` and the `Language` protocol; `execution_python.py` the Python strategy (code
assembly, cases, edge inputs); `execution_judge.py` the judging and the score. Their public names
are importable from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from core.types import ChatRequest, ChatResponse
from plugins.sandbox import RunResult, Sandbox, SandboxBusy, SandboxError, SandboxRefused, SandboxStats
from plugins.validators.base import ValidatorResult
from plugins.validators.examples import BUILTIN_NAMES, extract_examples
from plugins.validators.execution_judge import (
    EDGE_PENALTY,
    MAX_EDGE_PENALTY,
    Opaque,
    Verdict,
    decode,
    edge_crash,
    evidence,
    judge,
    judge_case,
    missing_module,
    same,
)
from plugins.validators.execution_plan import Check, ExecutionConfig, Language, Plan
from plugins.validators.execution_python import EDGE_CALL_TIMEOUT_S, MAX_CODE_CHARS, PythonLanguage

INLINE_PLAN_CHARS = 4000
"""Answers shorter than this are planned on the event loop (well under a millisecond)."""
START_MARGIN_S = 0.25
"""A check is not started unless the request has its timeout plus this much time left."""


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
        missing = missing_module(run)
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
        result = ValidatorResult.of(self.name, verdict.score, "; ".join(parts)[:300],
                                    passed=verdict.passed == verdict.total and verdict.score >= 5.0)
        return dataclasses.replace(result, evidence=evidence(plan, run))

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
    "EDGE_CALL_TIMEOUT_S",
    "EDGE_PENALTY",
    "INLINE_PLAN_CHARS",
    "MAX_CODE_CHARS",
    "MAX_EDGE_PENALTY",
    "START_MARGIN_S",
    "Check",
    "ExecutionConfig",
    "ExecutionValidator",
    "Language",
    "Opaque",
    "Plan",
    "PythonLanguage",
    "Verdict",
    "decode",
    "edge_crash",
    "judge",
    "judge_case",
    "run_prechecks",
    "same",
]
