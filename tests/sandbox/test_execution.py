"""The execution validator: scores by the share of the prompt's examples the answer passes,
abstains when it cannot check, never blocks the event loop, and makes the cascade escalate."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from core.learned import LearnedState, Thresholds
from core.upstream import Served
from plugins.base import CallContext, CallResult
from plugins.cascade import Cascade, Policy
from plugins.sandbox import Sandbox, SandboxConfig, SandboxRefused
from plugins.state import Snapshot
from plugins.tasks import build_task_types
from plugins.validators import Scorer, default_validators
from plugins.validators.execution import ExecutionValidator, run_prechecks

from .conftest import CONFIG, answer, code_request, fenced

HUMANEVAL = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """ You're given a list of deposit and withdrawal operations on a bank account that starts with
    zero balance. Detect if at any point the balance falls below zero.
    >>> below_zero([1, 2, 3])
    False
    >>> below_zero([1, 2, -4, 5])
    True
    """
'''
BODY = (
    "    balance = 0\n"
    "    for op in operations:\n"
    "        balance += op\n"
    "        if balance < 0:\n"
    "            return True\n"
    "    return False\n"
)
MBPP = '''Write a python function to remove first and last occurrence of a given character from the string.
Your code should pass these tests:

assert remove_Occ("hello","l") == "heo"
assert remove_Occ("abcda","a") == "bcd"
assert remove_Occ("PHP","P") == "H"
'''
REMOVE_OCC = '''def remove_Occ(s, ch):
    i = s.find(ch)
    if i != -1:
        s = s[:i] + s[i + 1:]
    j = s.rfind(ch)
    if j != -1:
        s = s[:j] + s[j + 1:]
    return s
'''
SQUARE = "Write a function square(n) that returns n squared.\nExample: square(3) -> 9\nsquare(-2) -> 4\n"


def score(validator: ExecutionValidator, prompt: str, text: str, task_type: str = "code_generation") -> Any:
    return validator.check_blocking(code_request(prompt, task_type), answer(text))


def test_humaneval_body_only_completion(validator):
    result = score(validator, HUMANEVAL, BODY, "code_completion")
    assert (result.score, result.passed, result.abstained) == (10.0, True, False)
    assert result.reason.startswith("2/2 examples pass") and result.reason.endswith(" ms")


def test_humaneval_whole_function_in_a_fence_and_a_wrong_one(validator):
    whole = fenced("def below_zero(operations):\n" + BODY)
    assert score(validator, HUMANEVAL, whole).score == 10.0
    wrong = fenced("def below_zero(operations):\n    return sum(operations) < 0\n")
    result = score(validator, HUMANEVAL, wrong)
    assert result.score == 5.0 and not result.passed
    assert "below_zero([1, 2, -4, 5]): expected True, got False" in result.reason


def test_mbpp_asserts_right_and_wrong(validator):
    assert score(validator, MBPP, fenced(REMOVE_OCC)).score == 10.0
    result = score(validator, MBPP, fenced("def remove_Occ(s, ch):\n    return s.strip(ch)\n"))
    assert result.score == pytest.approx(6.7) and not result.passed  # right only where the ends match
    assert "remove_Occ(\"hello\",\"l\"): expected 'heo', got 'hello'" in result.reason


def test_a_misnamed_function_fails_tests_that_name_it(validator):
    result = score(validator, MBPP, fenced(REMOVE_OCC.replace("remove_Occ", "remove_occ")))
    assert result.score == 0.0 and "NameError" in result.reason


def test_arrow_examples(validator):
    assert score(validator, SQUARE, fenced("def square(n):\n    return n * n\n")).score == 10.0
    assert score(validator, SQUARE, fenced("def square(n):\n    return n * 2\n")).score == 0.0
    # the whole answer is code, no fence
    assert score(validator, SQUARE, "def square(n):\n    return n ** 2\n").score == 10.0


def test_leetcode_pairs_call_the_solution_method(validator):
    prompt = ("Return indices of the two numbers that add up to target.\n\nExample 1:\n\n"
              "Input: nums = [2,7,11,15], target = 9\nOutput: [0,1]\n\nExample 2:\n\n"
              "Input: nums = [3,2,4], target = 6\nOutput: [1,2]\n")
    good = fenced(
        "class Solution:\n"
        "    def twoSum(self, nums, target):\n"
        "        seen = {}\n"
        "        for i, n in enumerate(nums):\n"
        "            if target - n in seen:\n"
        "                return [seen[target - n], i]\n"
        "            seen[n] = i\n"
    )
    assert score(validator, prompt, good).score == 10.0
    bad = fenced("def two_sum(nums, target):\n    return [0, 1]\n")
    assert score(validator, prompt, bad).score == 5.0


def test_stdin_programs_get_the_input_on_stdin(validator):
    prompt = ("Read n, then n integers on one line, and print their sum.\n\n"
              "Input\n```\n3\n1 2 3\n```\nOutput\n```\n6\n```\n")
    good = fenced("n = int(input())\nprint(sum(map(int, input().split()[:n])))\n")
    assert score(validator, prompt, good).score == 10.0
    bad = fenced("n = int(input())\nprint(n)\n")
    assert score(validator, prompt, bad).score == 0.0


def test_a_crash_on_an_edge_input_costs_part_of_the_score(validator):
    prompt = "Write largest(xs) returning the largest number in xs.\nExample: largest([3, 1, 2]) -> 3\n"
    crashes = score(validator, prompt, fenced("def largest(xs):\n    best = xs[0]\n    for x in xs:\n"
                                              "        best = max(best, x)\n    return best\n"))
    assert crashes.score == 8.5 and crashes.passed and "edge input crash: largest([]) IndexError" in crashes.reason
    deliberate = score(validator, prompt, fenced("def largest(xs):\n    if not xs:\n"
                                                 "        raise ValueError('empty')\n    return max(xs)\n"))
    assert deliberate.score == 10.0  # a precondition the answer states is not a crash
    no_edges = ExecutionValidator(CONFIG.model_copy(update={"edge_cases": False}), sandbox=validator.sandbox)
    fragile = fenced("def largest(xs):\n    return xs[0] if len(xs) == 1 else max(xs)\n")
    assert score(no_edges, prompt, fragile).score == 10.0


@pytest.mark.parametrize(
    ("prompt", "text", "task_type", "why"),
    [
        ("Write a function that reverses a string.", fenced("def rev(s):\n    return s[::-1]\n"),
         "code_generation", "no checkable examples"),
        (SQUARE, fenced("def square(n):\n    return n * n\n"), "chat", "not a code task"),
        (SQUARE, "Square it: multiply n by itself.", "code_generation", "no runnable Python"),
        (SQUARE, fenced("def square(n) return n * n"), "code_generation", "no runnable Python"),
        ("Squares: square(3) -> 9", fenced("def sq(n):\n    return n * n\n"), "code_generation",
         "no example applies"),
    ],
)
def test_abstains_when_it_cannot_check(validator, prompt, text, task_type, why):
    result = score(validator, prompt, text, task_type)
    assert result.abstained and why in result.reason, result


def test_a_function_the_prompt_names_must_exist(validator):
    result = score(validator, SQUARE, fenced("def sq(n):\n    return n * n\n"))  # "Write a function square(n)"
    assert result.score == 0.0 and "NameError" in result.reason


def test_an_answer_needing_a_third_party_module_is_not_judged(validator):
    result = score(validator, SQUARE, fenced("import numpy as np\n\ndef square(n):\n    return int(np.square(n))\n"))
    assert result.abstained and "numpy" in result.reason


def test_off_by_default():
    result = ExecutionValidator().score(code_request(SQUARE), answer(fenced("def square(n):\n    return 0\n")))
    assert result.abstained  # no task type enabled, no sandbox started


def test_refuses_without_isolation_unless_the_operator_allows_it(tmp_path: Path):
    refusing = Sandbox(SandboxConfig(pool_size=1, warm=False))
    refusing.simulate_failure = True
    try:
        with pytest.raises(SandboxRefused):
            refusing.run({"code": "x = 1\n", "cases": []})
        validator = ExecutionValidator(CONFIG, sandbox=refusing)
        result = score(validator, SQUARE, fenced("def square(n):\n    return n * n\n"))
        assert result.abstained and "sandbox refused" in result.reason
    finally:
        refusing.close()

    allowed = Sandbox(SandboxConfig(pool_size=1, warm=False, allow_unisolated=True))
    allowed.simulate_failure = True
    try:
        run = allowed.run({"code": "import os\n", "cases": [
            {"id": 0, "kind": "eval", "source": "os.getcwd()"},
            {"id": 1, "kind": "eval", "source": "open('scratch.txt', 'w').write('ok')"},
        ]})
        assert run.isolation["net"] is False and run.isolation["problems"]
        workdir = run.cases[0]["value"][1]
        assert workdir.startswith("/tmp/gw-sandbox-") and run.cases[1]["value"] == ["i", 2]
        time.sleep(0.3)
        assert not Path(workdir).exists()  # the temporary directory goes with the worker
    finally:
        allowed.close()


def test_the_event_loop_keeps_running_during_a_check(validator):
    slow = fenced("def square(n):\n    while True:\n        pass\n")

    async def main() -> tuple[Any, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        result = await validator.precheck(code_request(SQUARE), answer(slow), deadline_s=30)
        done.set()
        await task
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result.score == 0.0
    assert ticks >= 10  # ~1 s of hanging examples while the loop kept ticking


def test_a_full_pool_abstains_instead_of_waiting():
    box = Sandbox(SandboxConfig(pool_size=1))
    config = CONFIG.model_copy(update={"pool_size": 1, "queue_wait_s": 0.05})
    validator = ExecutionValidator(config, sandbox=box)
    slow = answer(fenced("def square(n):\n    while True:\n        pass\n"))
    quick = answer(fenced("def square(n):\n    return n * n\n"))

    async def main() -> tuple[Any, Any]:
        first = asyncio.create_task(validator.precheck(code_request(SQUARE), slow))
        await asyncio.sleep(0.1)
        second = await validator.precheck(code_request(SQUARE), quick)
        return await first, second

    try:
        first, second = asyncio.run(main())
        assert first.score == 0.0
        assert second.abstained and "sandbox busy" in second.reason
        assert validator.stats.snapshot()["counts"]["busy"] == 1
    finally:
        box.close()


def test_too_little_time_left_abstains(validator):
    result = asyncio.run(validator.precheck(code_request(SQUARE), answer(fenced("def square(n):\n    return 9\n")),
                                            deadline_s=0.5))
    assert result.abstained and "not enough time" in result.reason


def test_score_uses_the_precheck_and_does_not_run_on_the_loop(validator):
    request, response = code_request(SQUARE), answer(fenced("def square(n):\n    return n * n\n"))

    async def main() -> tuple[Any, Any, Any]:
        unchecked = validator.score(request, answer(fenced("def square(n):\n    return n\n")))
        costs = await run_prechecks([validator], request, response, deadline_s=30)
        return unchecked, costs, validator.score(request, response)

    unchecked, costs, checked = asyncio.run(main())
    assert unchecked.abstained and "not prechecked" in unchecked.reason
    assert set(costs) == {"execution"} and costs["execution"] > 0
    assert checked.score == 10.0 and not checked.abstained


# --------------------------------------------------------------------------- the cascade


def _snapshot(validator: ExecutionValidator) -> Snapshot:
    scorer = Scorer([*default_validators(), validator])
    return Snapshot(LearnedState(0, Thresholds(), {}, dict(scorer.weights), {}), scorer)


def _cascade() -> Cascade:
    return Cascade(["fast", "medium"], build_task_types({}), Policy(5.0, 2, None, True, True))


def _answers(by_tier: dict[str, str], calls: list[str], scorer: Scorer) -> Any:
    async def upstream(ctx: CallContext, *, stream: bool) -> CallResult:
        tier = ctx.tier or ""
        calls.append(tier)
        response = answer(by_tier[tier])
        response.model = f"model-{tier}"
        # What the cascade does before scoring (the two-line change proposed for plugins/cascade.py);
        # here it wraps the upstream so the test runs against the cascade as it is today.
        await run_prechecks(scorer.validators, ctx.request, response, deadline_s=ctx.remaining())
        return CallResult(response=response, served=Served(model=f"model-{tier}", cost=0.001))

    return upstream


def _context(prompt: str, learned: Snapshot) -> CallContext:
    return CallContext(request_id="r1", caller="agent", route="chat", requested_model="auto",
                       request=code_request(prompt), target="fast", deadline=time.monotonic() + 60, tier="fast",
                       learned=learned)


def test_cascade_escalates_a_wrong_cheap_answer_and_keeps_a_right_one(validator):
    cascade = _cascade()
    learned = _snapshot(validator)
    scorer = learned.scorer
    right = fenced(REMOVE_OCC)
    wrong = fenced("def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n")

    calls: list[str] = []
    ctx = _context(MBPP, learned)
    result = asyncio.run(cascade.wrap_call(ctx, _answers({"fast": wrong, "medium": right}, calls, scorer)))
    assert calls == ["fast", "medium"]
    assert result.response is not None and result.response.text == right
    assert ctx.steps[0]["score"] < 5 <= ctx.steps[1]["score"]
    assert result.validator_scores["execution"] == 10.0
    assert "escalated to medium" in ctx.route_reason

    calls = []
    ctx = _context(MBPP, learned)
    result = asyncio.run(cascade.wrap_call(ctx, _answers({"fast": right, "medium": wrong}, calls, scorer)))
    assert calls == ["fast"]
    assert result.response is not None and result.response.text == right
    assert (result.confidence or 0) >= 7
