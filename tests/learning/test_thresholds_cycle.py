"""The thresholds cycle on constructed verdicts: direction, the 24 h drift clamp, budget, minimums."""

from __future__ import annotations

import random
from datetime import timedelta

from learning.cycles import ThresholdParams, baseline, thresholds_cycle
from learning.types import AuditSample, ThresholdPoint
from tests.learning.factories import NOW, sample

OLD = NOW - timedelta(days=30)
HISTORY = [ThresholdPoint(OLD, 4.0, 7.0)]


def reviewed(n: int, good_above: float, *, seed: int = 1, low: float = 2.0, noise: float = 0.0) -> list[AuditSample]:
    """Answers with confidence uniform in [low, 10]; good when above `good_above` (`noise`: flips)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        confidence = round(rng.uniform(low, 10.0), 1)
        good = (confidence >= good_above) != (rng.random() < noise)
        status = "approved" if confidence >= 7 else "warning" if confidence >= 4 else "pending_review"
        out.append(sample(i, confidence=confidence, status=status, review="approved" if good else "rejected"))
    return out


def test_approved_moves_down_when_reviewers_accept_lower_scores_and_the_clamp_bites() -> None:
    result = thresholds_cycle(4.0, 7.0, reviewed(600, 5.0, low=3.0), HISTORY, NOW)
    new = result.values["thresholds"]
    assert new["approved"] == 6.5 and result.clamped  # wants ~5.5, held to 7.0 - 0.5
    change = next(c for c in result.changes if c.key == "thresholds.approved")
    assert "held to 6.50" in change.reason and change.samples["reviewed"] == 600
    assert new["review"] <= new["approved"] - 0.5


def test_approved_moves_up_when_too_many_approved_answers_are_rejected() -> None:
    result = thresholds_cycle(4.0, 7.0, reviewed(800, 8.0), HISTORY, NOW)
    assert result.values["thresholds"]["approved"] == 7.5 and result.clamped


def test_drift_is_measured_against_the_value_24_hours_earlier() -> None:
    history = [ThresholdPoint(NOW - timedelta(hours=30), 4.0, 7.0), ThresholdPoint(NOW - timedelta(hours=6), 4.0, 6.6)]
    result = thresholds_cycle(4.0, 6.6, reviewed(600, 5.0, low=3.0), history, NOW)
    # 24 h ago 7.0 served: the floor is 6.5, so only 0.1 more of the 0.5 is left today.
    assert result.values["thresholds"]["approved"] == 6.5
    assert baseline(history, NOW, timedelta(hours=24), history[-1]).approved == 7.0
    # Once the 6.6 is itself 24 h old, the next step is allowed.
    later = NOW + timedelta(hours=19)
    assert thresholds_cycle(4.0, 6.5, reviewed(600, 5.0, low=3.0), history, later).values["thresholds"][
        "approved"] == 6.1


def test_no_history_means_the_current_values_are_the_baseline() -> None:
    result = thresholds_cycle(4.0, 7.0, reviewed(600, 5.0, low=3.0), [], NOW)
    assert result.values["thresholds"]["approved"] == 6.5


def test_review_threshold_follows_rejections_but_stays_within_the_review_budget() -> None:
    # Half the traffic scores below 5 and reviewers reject it all: the review threshold wants ~5,
    # but only 10 % of traffic may wait for review.
    rows = reviewed(800, 5.0, low=0.0)
    result = thresholds_cycle(4.0, 7.0, rows, HISTORY, NOW)
    new = result.values["thresholds"]
    assert new["review"] < 4.0  # lowered towards the budget
    change = next(c for c in result.changes if c.key == "thresholds.review")
    assert "10%" in change.reason
    # With a generous budget it rises towards the 50 % point instead.
    generous = thresholds_cycle(4.0, 7.0, rows, HISTORY, NOW, ThresholdParams(review_budget=0.6))
    assert generous.values["thresholds"]["review"] == 4.5


def test_verdicts_only_from_the_review_band_leave_approved_alone() -> None:
    # No spot checks: every verdict is on a pending_review answer (below 4).
    rows = reviewed(300, 2.0, low=0.0)
    rows = [r for r in rows if (r.confidence or 0) < 4.0] + [
        sample(5000 + i, confidence=8.0) for i in range(2000)]
    result = thresholds_cycle(4.0, 7.0, rows, HISTORY, NOW)
    assert result.values["thresholds"]["approved"] == 7.0
    assert any("approved stays" in note for note in result.notes)


def test_too_few_verdicts_change_nothing() -> None:
    rows = reviewed(80, 5.0)
    result = thresholds_cycle(4.0, 7.0, rows, HISTORY, NOW)
    assert not result.changed and result.values["thresholds"] == {"review": 4.0, "approved": 7.0}
    assert "need 100" in result.notes[0]


def test_order_and_range_always_hold() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        review, approved = rng.choice([(0.5, 1.0), (4.0, 7.0), (9.0, 9.5), (2.0, 9.8)])
        rows = reviewed(300, rng.uniform(0, 10), seed=seed, low=rng.uniform(0, 9), noise=rng.uniform(0, 0.3))
        new = thresholds_cycle(review, approved, rows, [ThresholdPoint(OLD, review, approved)], NOW).values[
            "thresholds"]
        assert 0.0 <= new["review"] <= new["approved"] <= 10.0
        assert abs(new["review"] - review) <= 0.5 + 1e-9 and abs(new["approved"] - approved) <= 0.5 + 1e-9
