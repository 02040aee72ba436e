"""Time the validators on a realistic ~1,000-token answer: p50/p99 per validator and for the set.

    python scripts/bench_validators.py [--rounds 2000]

Every timed call starts with cold memo caches (`text.clear_caches()`), so the per-validator
numbers include the shared analysis (fences, tokens) that the first validator to run pays in
production, and the whole-set number is one real scoring: analysis once, then every validator.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.types import ChatRequest, ChatResponse
from plugins.validators import Scorer, Validator, default_validators
from plugins.validators.structured import JsonModeValidator, ToolCallValidator
from plugins.validators.text import analyze, clear_caches

PROMPT = (
    "Our FastAPI service calls three upstream LLM providers and we keep getting 429s at peak. "
    "How should we add client-side rate limiting per provider, and how do we make retries behave? "
    "Please include a small implementation and an example config."
)

ANSWER = '''The 429s you are seeing are the providers telling you that your burst rate is above the limit \
of your plan. Retrying harder makes this worse, because every retry is another request inside the same \
window. What works in practice is to shape the traffic on your side before it leaves the service, and to \
make retries cooperate with that shaping instead of fighting it.

## 1. Put a token bucket in front of each provider

A token bucket is the simplest limiter that still allows short bursts. Each provider gets its own bucket \
with a refill rate equal to the sustained limit of your plan and a capacity equal to the burst you are \
allowed. A request takes one token; when the bucket is empty the caller waits until the next token is \
due instead of sending the request and getting a 429 back. Because the waiting happens in your process, \
it is cheap, it is visible in your metrics, and it never counts against the provider's quota.

Keep one bucket per provider and per API key, not one global bucket. The providers enforce their limits \
per key, and a single global limiter would either starve the fast provider or overload the slow one. \
If you run several replicas of the service, divide the rate by the number of replicas, or move the \
bucket into Redis when the numbers get tight.

```python
import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Allows `rate` requests per second on average and bursts of up to `capacity`."""

    rate: float
    capacity: int
    tokens: float = field(init=False)
    updated: float = field(init=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)
```

The lock matters: without it two coroutines can both see one token and both take it. The sleep is \
computed from the missing fraction of a token, so a waiting caller wakes up exactly when its token is \
ready rather than polling in a tight loop.

## 2. Make retries respect the limiter and the provider

Retries should go through the same bucket as first attempts, otherwise a storm of retries bypasses the \
limiter entirely. Use exponential backoff with full jitter, and when the provider sends a Retry-After \
header, wait at least that long. Cap the number of attempts at three or four; after that the request \
should fail fast with a clear error so that the caller can fall back to another provider. Do not retry \
on errors that will not change, such as a 400 for an invalid request or a 401 for a bad key.

It also helps to treat a 429 as a signal to slow down the whole bucket for a short while. When one \
request is rejected, the next ones in the same second will almost certainly be rejected too, so lower \
the refill rate by half for ten seconds and then let it recover. This adaptive step removes most of the \
remaining 429s without any manual tuning, and it keeps your service polite when a provider is having a \
bad day.

## 3. Keep the limits in configuration

Hard-coding the numbers is how teams end up with stale limits after a plan upgrade. Put them in the \
service configuration next to the provider credentials, and load them at startup:

```json
{
  "providers": {
    "groq": {"rate_per_second": 5, "burst": 10, "max_retries": 3},
    "mistral": {"rate_per_second": 2, "burst": 4, "max_retries": 3},
    "cerebras": {"rate_per_second": 8, "burst": 16, "max_retries": 2}
  }
}
```

Build one bucket per entry when the application starts and keep them on the application state, so that \
every request handler uses the same instances. Creating a new bucket per request is a common mistake: \
each request then sees a full bucket and the limiter does nothing at all.

## 4. Measure before and after

Export three numbers per provider: the time requests spend waiting in the bucket, the count of 429 \
responses, and the count of requests that exhausted their retries. Waiting time that keeps growing \
means your sustained traffic is above the plan and no amount of client-side shaping will fix it; the \
answer then is a higher plan, a second key, or routing part of the traffic to another provider. A \
falling 429 count with flat waiting time means the limiter is doing its job.

Finally, test the behaviour with a fake upstream that returns 429 with a Retry-After header on every \
fifth request. It takes a few minutes to write and it shows immediately whether your retries honour the \
header, whether the bucket slows down after a rejection, and whether the errors that reach your callers \
are the ones you expect. Once that test passes, roll the change out to one replica first and watch the \
three metrics for a day before you enable it everywhere.
'''


LIMIT_SCHEMA = {
    "type": "object",
    "properties": {
        "rate_per_second": {"type": "number", "minimum": 0},
        "burst": {"type": "integer", "minimum": 1},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["rate_per_second", "burst"],
}
SCHEMA = {
    "type": "object",
    "properties": {"providers": {"type": "object", "additionalProperties": LIMIT_SCHEMA}},
    "required": ["providers"],
}
JSON_ANSWER = json.dumps(
    {"providers": {f"provider-{i}": {"rate_per_second": i + 1, "burst": 2 * i + 2, "max_retries": 3}
                   for i in range(12)}},
    indent=2,
)
TOOLS = [
    {"type": "function", "function": {"name": "set_limit", "parameters": LIMIT_SCHEMA}},
    {"type": "function", "function": {"name": "get_limits", "parameters": {"type": "object", "properties": {}}}},
]


def _time(validator: Validator, request: ChatRequest, response: ChatResponse, rounds: int) -> list[int]:
    samples = []
    for _ in range(rounds):
        clear_caches()
        start = time.perf_counter_ns()
        validator.score(request, response)
        samples.append(time.perf_counter_ns() - start)
    return samples


def _percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC (shows its share of p99)")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()

    request = ChatRequest(messages=[{"role": "user", "content": PROMPT}], task_type="code_generation")
    response = ChatResponse(text=ANSWER, finish_reason="stop", completion_tokens=1000)
    validators = default_validators()
    scorer = Scorer(validators)
    analysis = analyze(ANSWER)
    print(
        f"answer: {len(ANSWER)} chars, ~{analysis.word_count} words, "
        f"{len(analysis.blocks)} code blocks; {args.rounds} rounds, cold caches each call"
        + (", GC off" if args.no_gc else "")
    )

    for _ in range(200):  # warm-up: imports, jsonschema, CPU caches
        clear_caches()
        scorer.score(request, response)

    print(f"{'validator':<16}{'p50 us':>9}{'p99 us':>9}  result")
    for validator in validators:
        p50, p99 = _percentiles(_time(validator, request, response, args.rounds))
        result = validator.score(request, response)
        verdict = "abstain" if result.abstained else f"{result.score:g}"
        print(f"{validator.name:<16}{p50:>9.1f}{p99:>9.1f}  {verdict}: {result.reason}")

    samples = []
    for _ in range(args.rounds):
        clear_caches()
        start = time.perf_counter_ns()
        scoring = scorer.score(request, response)
        samples.append(time.perf_counter_ns() - start)
    p50, p99 = _percentiles(samples)
    print(f"{'ALL (Scorer)':<16}{p50:>9.1f}{p99:>9.1f}  confidence {scoring.confidence}")

    print(f"\nstructured output (schema compiled once, then cached): {len(JSON_ANSWER)}-char JSON answer")
    json_request = ChatRequest(
        messages=[{"role": "user", "content": PROMPT}],
        params={"response_format": {"type": "json_schema", "json_schema": {"name": "cfg", "schema": SCHEMA}}},
    )
    tool_request = ChatRequest(messages=[{"role": "user", "content": PROMPT}], params={"tools": TOOLS})
    arguments = json.dumps({"rate_per_second": 5, "burst": 10, "max_retries": 3})
    call = {"id": "call_1", "type": "function", "function": {"name": "set_limit", "arguments": arguments}}
    cases: list[tuple[Validator, ChatRequest, ChatResponse]] = [
        (JsonModeValidator(), json_request, ChatResponse(text=JSON_ANSWER, finish_reason="stop")),
        (ToolCallValidator(), tool_request, ChatResponse(text="", tool_calls=[call], finish_reason="tool_calls")),
    ]
    for validator, req, resp in cases:
        validator.score(req, resp)  # compile the schema
        p50, p99 = _percentiles(_time(validator, req, resp, args.rounds))
        result = validator.score(req, resp)
        print(f"{validator.name:<16}{p50:>9.1f}{p99:>9.1f}  {result.score:g}: {result.reason}")


if __name__ == "__main__":
    main()
