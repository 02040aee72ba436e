"""The assignments cycle on constructed audit data: moves, one tier at a time, minimums, exploration."""

from __future__ import annotations

from learning.cycles import AssignmentParams, assignments_cycle, cells
from learning.types import AuditSample
from tests.learning.factories import sample

TIERS = ["fast", "medium", "large", "external"]


def started(task: str, tier: str, n: int, *, approved: float = 1.0, escalated: float = 0.0,
            start: int = 0) -> list[AuditSample]:
    """`n` requests of `task` that started on `tier`: shares approved and escalated."""
    out = []
    for i in range(n):
        if i < round(escalated * n):
            path = [tier, TIERS[TIERS.index(tier) + 1]]
            out.append(sample(start + i, task=task, tiers=path, status="approved"))
        elif i < round(escalated * n) + round(approved * n):
            out.append(sample(start + i, task=task, tier=tier, status="approved"))
        else:
            out.append(sample(start + i, task=task, tier=tier, status="warning", confidence=5.5))
    return out


def test_cells_count_the_first_tier_and_the_outcome() -> None:
    rows = started("chat", "fast", 10, approved=0.5, escalated=0.2)
    rows.append(sample(99, task="chat", tier="fast", status="approved", review="rejected"))
    rows.append(sample(98, task="chat", tier="fast", status="warning", review="approved"))
    rows.append(sample(97, task="chat", tier="fast", status="error"))
    cell = cells(rows)[("chat", "fast")]
    assert (cell.n, cell.passed, cell.accepted) == (12, 10, 6)


def test_moves_down_when_the_cheaper_tier_is_good_enough() -> None:
    rows = started("chat", "medium", 100) + started("chat", "fast", 40, approved=0.9, start=1000)
    result = assignments_cycle({"chat": "medium"}, {"chat": 0.1}, rows, TIERS)
    assert result.values["assignments"]["chat"] == "fast"
    change = next(c for c in result.changes if c.key == "assignments.chat")
    assert change.samples == {"medium": 100, "fast": 40} and "meets the target" in change.reason
    assert "chat" not in result.values["exploration"]  # nothing is cheaper than fast


def test_moves_at_most_one_tier_per_cycle() -> None:
    rows = started("chat", "large", 100) + started("chat", "medium", 50, start=1000)
    rows += started("chat", "fast", 50, start=2000)
    result = assignments_cycle({"chat": "large"}, {}, rows, TIERS)
    assert result.values["assignments"]["chat"] == "medium"


def test_moves_up_when_the_assigned_tier_misses_the_target() -> None:
    rows = started("code_review", "fast", 60, approved=0.4, escalated=0.5)
    result = assignments_cycle({"code_review": "fast"}, {}, rows, TIERS)
    assert result.values["assignments"]["code_review"] == "medium"
    assert "misses the target" in result.changes[0].reason
    capped = assignments_cycle({"code_review": "fast"}, {}, rows, TIERS, AssignmentParams(max_tier="fast"))
    assert capped.values["assignments"]["code_review"] == "fast"


def test_does_not_move_up_to_a_tier_known_to_be_no_better() -> None:
    rows = started("analysis", "fast", 60, approved=0.4, escalated=0.5)
    rows += started("analysis", "medium", 60, approved=0.3, escalated=0.6, start=1000)
    result = assignments_cycle({"analysis": "fast"}, {}, rows, TIERS)
    assert result.values["assignments"]["analysis"] == "fast"


def test_no_move_without_the_minimum_samples() -> None:
    rows = started("chat", "medium", 100) + started("chat", "fast", 29, start=1000)
    result = assignments_cycle({"chat": "medium"}, {"chat": 0.1}, rows, TIERS)
    assert result.values["assignments"]["chat"] == "medium" and not result.changed
    assert any("need 30" in note for note in result.notes)
    bad = started("chat", "fast", 20, approved=0.0, escalated=1.0)
    assert not assignments_cycle({"chat": "fast"}, {}, bad, TIERS).changed


def test_cheaper_tier_must_be_close_to_the_current_quality() -> None:
    rows = started("chat", "medium", 100) + started("chat", "fast", 100, approved=0.8, start=1000)
    assert assignments_cycle({"chat": "medium"}, {"chat": 0.05}, rows, TIERS).values["assignments"][
        "chat"] == "medium"


def test_exploration_share_follows_the_cheaper_tiers_sample_count() -> None:
    few = started("chat", "medium", 100)
    result = assignments_cycle({"chat": "medium", "classification": "fast"}, {}, few, TIERS)
    assert result.values["exploration"] == {"chat": 0.1}
    change = next(c for c in result.changes if c.key == "exploration.chat")
    assert change.old == 0.0 and change.new == 0.1
    enough = few + started("chat", "fast", 60, approved=0.5, escalated=0.4, start=1000)
    result = assignments_cycle({"chat": "medium"}, {"chat": 0.1}, enough, TIERS)
    assert result.values["assignments"]["chat"] == "medium" and result.values["exploration"] == {"chat": 0.05}
