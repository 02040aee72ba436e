"""The console's insight figures on a known audit set (learning/insights.py, learning/costs.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from learning import insights as ins
from learning.costs import Price, cost_at, savings, tier_prices

DAY1 = datetime(2026, 12, 1, 10, tzinfo=UTC)
DAY2 = datetime(2026, 12, 2, 10, tzinfo=UTC)
PRICES = {"fast": Price(1e-7, 2e-7), "large": Price(1e-5, 3e-5)}


def call(at: datetime, task: str, cost: float, tin: int, tout: int, **kw: object) -> ins.CallRow:
    return ins.CallRow(created_at=at, task_type=task, tier=kw.pop("tier", "fast"), status=kw.pop("status", "approved"),  # type: ignore[arg-type]
                       confidence=kw.pop("confidence", 8.0), cost=cost, tokens_in=tin, tokens_out=tout, **kw)  # type: ignore[arg-type]


ROWS = [
    call(DAY1, "chat", 0.0001, 100, 50),
    call(DAY1, "code", 0.002, 200, 100, escalations=1, steps=[{"tier": "fast"}, {"tier": "large"}]),
    call(DAY2, "chat", 0.0002, 300, 10, steps=[{"tier": "fast", "error": "UpstreamError"}, {"tier": "medium"}],
         escalations=1),
    call(DAY2, "chat", 0.0, 0, 0, status="error"),
    call(DAY2, "chat", 0.0, 50, 50, offline=True),
]


def test_savings_are_the_same_tokens_at_each_tier_price_minus_what_was_paid() -> None:
    figures = ins.savings_figures(ROWS, PRICES)
    total = figures["total"]
    assert total["calls"] == 3  # error and offline rows answered nothing at a tier
    at_large = 100 * 1e-5 + 50 * 3e-5 + 200 * 1e-5 + 100 * 3e-5 + 300 * 1e-5 + 10 * 3e-5
    assert total["at"]["large"] == pytest.approx(at_large)
    assert total["saved"]["large"] == pytest.approx(at_large - 0.0023)
    assert figures["by_task_type"]["code"]["saved"]["large"] == pytest.approx(200 * 1e-5 + 100 * 3e-5 - 0.002)
    assert list(figures["by_day"]) == ["2026-12-01", "2026-12-02"]
    assert figures["by_day"]["2026-12-02"]["actual"] == pytest.approx(0.0002)
    # one function: the same figure a bench gets from learning.costs
    expected = cost_at(200, 100, PRICES["fast"]) - 0.002
    assert savings([(0.002, 200, 100)], PRICES)["saved"]["fast"] == pytest.approx(expected)


def test_tier_prices_take_each_groups_first_deployment() -> None:
    model_list = [{"model_name": "fast", "model_info": {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}},
                  {"model_name": "fast", "model_info": {"input_cost_per_token": 9.0}},
                  {"model_name": "embeddings", "model_info": {}}]
    assert tier_prices(model_list, ["fast"]) == {"fast": Price(1e-7, 2e-7)}


def test_escalation_rate_and_reasons() -> None:
    figures = ins.escalation_figures(ROWS)
    assert figures["calls"] == 3 and figures["escalated"] == 2
    assert figures["rate"] == pytest.approx(2 / 3)
    assert figures["by_task_type"]["chat"] == {"calls": 2, "escalated": 1, "rate": 0.5}
    assert figures["reasons"] == {"fast: low confidence": 1, "fast: UpstreamError": 1}


def test_confidence_bands_with_reviewer_acceptance() -> None:
    rows = [call(DAY1, "chat", 0, 1, 1, confidence=c) for c in (2.5, 7.0, 7.9, 10.0)]
    reviews = [ins.ReviewRow(DAY1, "approved", confidence=7.2), ins.ReviewRow(DAY1, "rejected", confidence=7.5),
               ins.ReviewRow(DAY1, "corrected", confidence=7.1, score=2.0),
               ins.ReviewRow(DAY1, "pending", confidence=7.0)]
    bands = ins.confidence_figures(rows, reviews)["bands"]
    assert [b["calls"] for b in bands] == [0, 0, 1, 0, 0, 0, 0, 2, 0, 1]
    assert bands[7]["reviewed"] == 3 and bands[7]["accepted"] == 1
    assert bands[7]["acceptance"] == pytest.approx(1 / 3)
    assert bands[2]["acceptance"] is None


def test_queue_depth_age_and_providers() -> None:
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    reviews = [ins.ReviewRow(DAY1, "pending", task_type="chat"), ins.ReviewRow(DAY2, "pending", spot_check=True),
               ins.ReviewRow(DAY1, "approved")]
    queue = ins.queue_figures(reviews, now)
    assert queue["depth"] == 2 and queue["spot_checks"] == 1
    assert queue["oldest_age_s"] == 26 * 3600
    assert queue["by_age"] == {"< 1 h": 0, "1-24 h": 1, "1-7 d": 1, "> 7 d": 0}
    rows = [call(DAY1, "chat", 0, 1, 1, attempts=[
        {"provider": "groq", "outcome": "RateLimitError", "retry_after": 10},
        {"provider": "mistral", "outcome": "ok"}])]
    providers = ins.provider_figures(rows)
    assert providers["providers"]["groq"]["rate_limited"] == 1
    assert providers["providers"]["groq"]["cooldown_s"] == 10
    assert providers["failovers"] == {"groq -> mistral": 1}


def test_state_diff_names_each_changed_key() -> None:
    old = {"weights": {"refusal": 1.0, "json": 0.5}, "thresholds": {"review": 4.0}}
    new = {"weights": {"refusal": 1.5, "json": 0.5}, "thresholds": {"review": 4.0}, "assignments": {"chat": "fast"}}
    assert ins.state_diff(old, new) == [{"key": "assignments.chat", "old": None, "new": "fast"},
                                        {"key": "weights.refusal", "old": 1.0, "new": 1.5}]
