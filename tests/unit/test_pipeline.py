"""The pipeline's decisions, in process: the real plugins over an in-process upstream double.

One test per config knob of the pipeline (escalation threshold, escalate_on_error, the cost
budget, the exploration share, the streaming verdict, completions/embeddings on the one path),
so deleting any of those behaviours fails here, fast, before the socket-level tests run.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from core.errors import UpstreamError
from core.learned import LearnedState, Thresholds
from core.records import AuditRecord
from core.types import ChatRequest, ChatResponse
from plugins.base import CallContext, Pipeline
from plugins.cascade import Policy
from plugins.registry import PluginDeps, build_plugins
from plugins.state import Snapshot
from plugins.tasks import build_task_types
from plugins.terminal import upstream_call
from plugins.tiering import LocalPins, TierSelection
from plugins.validators import Scorer
from plugins.validators.base import ValidatorResult
from tests.support.upstream_double import UpstreamDouble

TIERS = ["fast", "medium", "large"]


class SaysGood:
    """Scores 10 when the answer contains 'good', 0 otherwise: the tests decide what is right."""

    name = "says_good"
    default_weight = 1.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        ok = "good" in response.text
        return ValidatorResult.of(self.name, 10.0 if ok else 0.0, "good" if ok else "not good")


class Records:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def submit(self, record: AuditRecord) -> None:
        self.records.append(record)


def snapshot(exploration: dict[str, float] | None = None, assignments: dict[str, str] | None = None) -> Snapshot:
    scorer = Scorer([SaysGood()])
    state = LearnedState(7, Thresholds(4.0, 7.0), assignments or {"chat": "fast"}, dict(scorer.weights),
                         exploration or {})
    return Snapshot(state, scorer)


def build(upstream: UpstreamDouble, *, names: tuple[str, ...] = ("audit", "tier_selection", "cascade", "gate"),
          threshold: float = 5.0, max_cost: float | None = None, escalate_on_error: bool = True,
          buffer_streams: bool = True) -> tuple[Pipeline, Records]:
    sink = Records()
    deps = PluginDeps(TIERS, build_task_types({}, TIERS), Policy(threshold, 3, max_cost, escalate_on_error,
                      buffer_streams), LocalPins(), 0.0, sink)
    return Pipeline(build_plugins(list(names), deps), upstream_call(upstream)), sink


def context(request: ChatRequest, learned: Snapshot | None = None, target: str = "fast",
            auto: bool = True) -> CallContext:
    return CallContext(request_id="req_1", caller="agent", route="chat", requested_model="auto", request=request,
                       target=target, tier=target, deadline=time.monotonic() + 30, learned=learned or snapshot(),
                       auto=auto)


def chat(stream: bool = False) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hello there"}], stream=stream, task_type="chat")


async def drain(stream: Any) -> str:
    text = []
    async for chunk in stream:
        for choice in chunk.get("choices") or ():
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)


def test_a_low_score_escalates_and_the_better_answer_is_served() -> None:
    upstream = UpstreamDouble({"fast": "meh", "medium": "good answer", "large": "good too"})
    pipeline, sink = build(upstream)
    result = asyncio.run(pipeline.run(context(chat())))
    assert result.response is not None and result.response.text == "good answer"
    assert [c.target for c in upstream.calls] == ["fast", "medium"]
    record = sink.records[0]
    assert (record.tier, record.escalations, record.status, record.learned_version) == ("medium", 1, "approved", 7)
    assert [s["tier"] for s in record.steps] == ["fast", "medium"]


def test_the_escalation_threshold_decides_whether_to_escalate() -> None:
    upstream = UpstreamDouble({"fast": "meh", "medium": "good"})
    pipeline, sink = build(upstream, threshold=0.0)
    asyncio.run(pipeline.run(context(chat())))
    assert [c.target for c in upstream.calls] == ["fast"]
    assert sink.records[0].status == "pending_review"


@pytest.mark.parametrize("escalate_on_error", [True, False])
def test_escalate_on_error(escalate_on_error: bool) -> None:
    upstream = UpstreamDouble({"fast": lambda r: UpstreamError("the provider failed"), "medium": "good"})
    pipeline, sink = build(upstream, escalate_on_error=escalate_on_error)
    if escalate_on_error:
        result = asyncio.run(pipeline.run(context(chat())))
        assert result.response is not None and result.response.text == "good"
        assert sink.records[0].steps[0].get("error") == "UpstreamError"
    else:
        with pytest.raises(UpstreamError):
            asyncio.run(pipeline.run(context(chat())))
        assert [c.target for c in upstream.calls] == ["fast"]
        assert sink.records[0].status == "error"
        assert [a["outcome"] for a in sink.records[0].attempts] == ["UpstreamError"]


def test_the_cost_budget_stops_escalation() -> None:
    upstream = UpstreamDouble({"fast": "meh", "medium": "good"}, cost_per_call={"fast": 0.01})
    pipeline, sink = build(upstream, max_cost=0.005)
    asyncio.run(pipeline.run(context(chat())))
    assert [c.target for c in upstream.calls] == ["fast"]
    assert sink.records[0].cost == pytest.approx(0.01)


class AlwaysExplore(random.Random):
    def random(self) -> float:
        return 0.0


@pytest.mark.parametrize(("share", "tier"), [(0.5, "fast"), (0.0, "medium")])
def test_the_exploration_share_sends_a_task_one_tier_cheaper(share: float, tier: str) -> None:
    selection = TierSelection(TIERS, build_task_types({}, TIERS), LocalPins(), 0.0, rng=AlwaysExplore())
    ctx = context(chat(), learned=snapshot(exploration={"chat": share}, assignments={"chat": "medium"}))
    asyncio.run(selection.before_call(ctx))
    assert ctx.tier == tier
    assert ("exploring" in ctx.route_reason) == (share > 0)


def test_a_named_tier_is_not_routed_by_task_type() -> None:
    selection = TierSelection(TIERS, build_task_types({}, TIERS), LocalPins(), 0.0)
    ctx = context(chat(), learned=snapshot(assignments={"chat": "medium"}), target="large", auto=False)
    asyncio.run(selection.before_call(ctx))
    assert ctx.tier == "large"


@pytest.mark.parametrize(("answer", "status"), [("good stream", "approved"), ("meh", "pending_review")])
def test_a_passthrough_stream_is_gated_when_it_ends(answer: str, status: str) -> None:
    upstream = UpstreamDouble({"large": answer})
    pipeline, sink = build(upstream)

    async def run() -> str:
        result = await pipeline.run(context(chat(stream=True), target="large", auto=False))
        assert result.stream is not None and result.status is None  # not known before the end
        return await drain(result.stream)

    assert asyncio.run(run()) == answer
    assert upstream.calls[0].stream is True
    assert (sink.records[0].status, sink.records[0].confidence is not None) == (status, True)


def test_a_stream_nothing_gated_is_audited_unscored_never_approved() -> None:
    upstream = UpstreamDouble({"large": "good stream"})
    pipeline, sink = build(upstream, names=("audit",))  # no cascade, no gate: nobody judged it

    async def run() -> None:
        result = await pipeline.run(context(chat(stream=True), target="large", auto=False))
        await drain(result.stream)

    asyncio.run(run())
    assert sink.records[0].status == "unscored"


def test_completions_and_embeddings_go_through_the_same_pipeline() -> None:
    upstream = UpstreamDouble({"fast": "good text", "embeddings": "unused"})
    pipeline, sink = build(upstream)
    completion = ChatRequest(messages=[{"role": "user", "content": "say"}], task_type="chat", kind="completion",
                             payload="say")
    result = asyncio.run(pipeline.run(context(completion)))
    assert result.response is not None and result.response.body["choices"][0]["text"] == "good text"
    embedding = ChatRequest(messages=[{"role": "user", "content": "x"}], kind="embedding", payload="x")
    result = asyncio.run(pipeline.run(context(embedding, target="embeddings", auto=False)))
    assert result.response is not None and result.response.body["data"][0]["embedding"] == [0.1, 0.2]
    assert [r.status for r in sink.records] == ["approved", "unscored"]
    assert [r.tokens_in for r in sink.records] == [3, 4]
    assert [c.kind for c in upstream.calls] == ["completion", "embedding"]
