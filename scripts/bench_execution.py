"""Cost of one execution check (extract examples, assemble, run in the sandbox, judge).

    python scripts/bench_execution.py [--n 200] [--burst 24] [--pool-size 2] [--queue-wait 0.25]

Measures, on a typical function with four examples (MBPP-style asserts) plus edge inputs:

* sequential, paced: one check at a time with a pause between (how a gateway sees them: one per
  answer), so a warm worker is always ready;
* sequential, back to back: no pause, so each check may wait for the previous run's replacement
  worker to finish starting (worst case for one caller);
* cold: no warm workers, an interpreter started and isolated per check;
* burst: `--burst` checks at once through the async path with `--pool-size` slots; checks that do
  not get a slot within `--queue-wait` abstain ("busy"), and are counted, not timed.

Prints p50/p99 in ms, and the isolation the workers got. Timings are for this machine only;
they are never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.types import ChatRequest, ChatResponse
from plugins.sandbox import Sandbox
from plugins.validators.execution import ExecutionConfig, ExecutionValidator

PROMPT = """Write a python function to find the second largest distinct number in a list.
Your code should pass these tests:

assert second_largest([1, 2, 3, 4]) == 3
assert second_largest([10, 10, 9]) == 9
assert second_largest([-1, -5, -3]) == -3
assert second_largest([7, 7, 7, 2]) == 2
"""
ANSWER = """Here is a solution:

```python
def second_largest(numbers):
    distinct = sorted(set(numbers), reverse=True)
    if len(distinct) < 2:
        raise ValueError("need two distinct numbers")
    return distinct[1]
```
"""


def request() -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": PROMPT}], task_type="code_generation")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99),
            "mean_ms": round(statistics.fmean(values), 1), "max_ms": round(max(values), 1)}


def sequential(validator: ExecutionValidator, n: int, pause_s: float) -> dict[str, float | int]:
    costs: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        result = validator.check_blocking(request(), ChatResponse(text=ANSWER))
        costs.append((time.perf_counter() - started) * 1000)
        assert result.score == 10.0, result
        if pause_s:
            time.sleep(pause_s)
    return summary(costs)


async def burst(validator: ExecutionValidator, size: int) -> dict[str, object]:
    async def one() -> tuple[float, bool]:
        started = time.perf_counter()
        result = await validator.precheck(request(), ChatResponse(text=ANSWER), deadline_s=60)
        return (time.perf_counter() - started) * 1000, result.abstained

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one() for _ in range(size)))
    wall = (time.perf_counter() - started) * 1000
    done = [ms for ms, abstained in outcomes if not abstained]
    return {**summary(done), "busy_abstained": sum(1 for _, a in outcomes if a), "wall_ms": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="checks per sequential series")
    parser.add_argument("--burst", type=int, default=24, help="checks started at once")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--queue-wait", type=float, default=0.25, help="seconds a check waits for a slot")
    parser.add_argument("--pause", type=float, default=0.1, help="pause between paced checks, seconds")
    args = parser.parse_args()

    config = ExecutionConfig(enabled_task_types=["code_generation"], pool_size=args.pool_size,
                             queue_wait_s=args.queue_wait)
    report: dict[str, object] = {"cpus": os.cpu_count(), "pool_size": args.pool_size}
    warm = Sandbox(config.sandbox_config())
    try:
        report["isolation"] = warm.probe()
        validator = ExecutionValidator(config, sandbox=warm)
        warm.warm_up()
        time.sleep(0.5)
        sequential(validator, 5, args.pause)  # warm the caches and the workers
        report["sequential_paced"] = sequential(validator, args.n, args.pause)
        report["sequential_back_to_back"] = sequential(validator, args.n, 0.0)
        report["sandbox_run_only"] = warm.stats.snapshot()
        time.sleep(0.5)
        report["burst"] = asyncio.run(burst(validator, args.burst))
        wide = ExecutionValidator(config.model_copy(update={"queue_wait_s": 30.0}), sandbox=warm)
        time.sleep(0.5)
        report["burst_waiting_for_slots"] = asyncio.run(burst(wide, args.burst))
    finally:
        warm.close()
    cold_config = config.model_copy(update={"warm": False})
    cold = Sandbox(cold_config.sandbox_config())
    try:
        report["sequential_cold"] = sequential(ExecutionValidator(cold_config, sandbox=cold), max(10, args.n // 4),
                                               args.pause)
    finally:
        cold.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
