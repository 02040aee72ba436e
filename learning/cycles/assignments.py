"""The tier-assignment cycle (every 24 h): per task type, the cheapest tier that answers well enough.

Data
    A request counts for the cell (task type, tier it *started* on: its first cascade step).
    Requests whose first step failed upstream (an error, not an answer) and calls that ended in
    an error are left out: they say nothing about answer quality.
Quality of a cell
    pass rate      share answered without escalating (the first answer met the escalation bar)
    approval rate  share that passed and ended accepted: a reviewer accepted it, or it was gated
                   `approved` and no reviewer rejected it
    A cell meets the target when approval >= `min_approval` and pass >= `min_pass`; moving
    *down* also needs the cheaper tier's approval to be at least `relative_quality` (90 %) of
    the current tier's (so a harsh validator set, under which even the best tier rarely reaches
    the absolute bar, does not stop learning, and a cheaper tier is compared with what it replaces).
Moves (at most one tier per cycle, only on cells with >= `min_samples` requests)
    down  when the next cheaper tier meets the target (its data comes from exploration);
    up    when the assigned tier misses the target by more than `hysteresis` and the next tier
          is not known to be worse; never above `max_tier` when one is set.
Exploration
    Every task type not on the cheapest tier sends `explore_share` of its `auto` traffic one tier
    cheaper while that cell has fewer than `min_samples` requests, `explore_min_share` once it has
    them, so the learner keeps seeing whether the cheaper tier has become good enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from learning.types import AuditSample, Change, CycleResult, verdict_label


@dataclass(frozen=True, slots=True)
class AssignmentParams:
    min_samples: int = 30
    min_approval: float = 0.60
    min_pass: float = 0.75
    relative_quality: float = 0.90
    hysteresis: float = 0.05
    explore_share: float = 0.10
    explore_min_share: float = 0.05
    max_tier: str | None = None
    corrected_good_score: float = 7.0


@dataclass(frozen=True, slots=True)
class Cell:
    n: int = 0
    passed: int = 0
    accepted: int = 0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.n if self.n else 0.0

    @property
    def approval_rate(self) -> float:
        return self.accepted / self.n if self.n else 0.0

    def describe(self, tier: str) -> str:
        return f"{tier} approval {self.approval_rate:.1%}, pass {self.pass_rate:.1%} over {self.n}"


def cells(samples: Iterable[AuditSample], corrected_good_score: float = 7.0) -> dict[tuple[str, str], Cell]:
    """(task type, first tier) -> Cell."""
    counts: dict[tuple[str, str], list[int]] = {}
    for s in samples:
        tier = s.first_tier
        if s.task_type is None or tier is None or s.status == "error" or (s.steps and s.steps[0].error):
            continue
        passed = not s.escalated
        label = verdict_label(s.review, corrected_good_score) if passed else None
        accepted = passed and (label is True or (label is None and s.status == "approved"))
        c = counts.setdefault((s.task_type, tier), [0, 0, 0])
        c[0] += 1
        c[1] += passed
        c[2] += accepted
    return {key: Cell(*value) for key, value in counts.items()}


def _meets(cell: Cell, params: AssignmentParams, slack: float = 0.0) -> bool:
    return cell.approval_rate >= params.min_approval - slack and cell.pass_rate >= params.min_pass - slack


def assignments_cycle(
    assignments: Mapping[str, str],
    exploration: Mapping[str, float],
    samples: Sequence[AuditSample],
    tiers: Sequence[str],
    params: AssignmentParams = AssignmentParams(),
) -> CycleResult:
    """New task-type -> tier assignments and exploration shares. Pure: no I/O."""
    rank = {tier: i for i, tier in enumerate(tiers)}
    top = rank.get(params.max_tier, len(tiers) - 1) if params.max_tier else len(tiers) - 1
    table = cells(samples, params.corrected_good_score)
    new_assignments = dict(assignments)
    new_exploration = {k: v for k, v in exploration.items() if k in assignments}
    result = CycleResult("assignments", {"assignments": new_assignments, "exploration": new_exploration})
    result.samples = {"requests": sum(c.n for c in table.values()), "cells": len(table)}
    empty = Cell()
    for task in sorted(assignments):
        tier = assignments[task]
        if tier not in rank:
            result.notes.append(f"{task}: assigned to unknown tier {tier!r}: left alone")
            continue
        r = rank[tier]
        here = table.get((task, tier), empty)
        cheaper_tier = tiers[r - 1] if r > 0 else None
        cheaper = table.get((task, cheaper_tier), empty) if cheaper_tier else empty
        higher_tier = tiers[r + 1] if r + 1 <= top else None
        higher = table.get((task, higher_tier), empty) if higher_tier else empty
        counts = {f"{tier}": here.n, **({cheaper_tier: cheaper.n} if cheaper_tier else {})}
        target = tier
        reason = ""
        if here.n >= params.min_samples and not _meets(here, params, params.hysteresis) and higher_tier:
            if higher.n >= params.min_samples and higher.approval_rate <= here.approval_rate:
                result.notes.append(f"{task}: {here.describe(tier)} misses the target, but "
                                    f"{higher.describe(higher_tier)} is no better: stays on {tier}")
            else:
                target = higher_tier
                reason = (f"{here.describe(tier)} misses the target (approval >= {params.min_approval:.0%}, "
                          f"pass >= {params.min_pass:.0%})")
                if (task, higher_tier) in table:
                    counts[higher_tier] = higher.n
        elif cheaper_tier and cheaper.n >= params.min_samples:
            relative_ok = here.n < params.min_samples or (
                cheaper.approval_rate >= params.relative_quality * here.approval_rate
            )
            if _meets(cheaper, params) and relative_ok:
                target = cheaper_tier
                reason = f"{cheaper.describe(cheaper_tier)} meets the target"
                if here.n >= params.min_samples:
                    reason += f" and is >= {params.relative_quality:.0%} of {here.describe(tier)}"
            else:
                result.notes.append(f"{task}: stays on {tier}: {cheaper.describe(cheaper_tier)} is not good enough")
        elif here.n < params.min_samples:
            result.notes.append(f"{task}: only {here.n} requests started on {tier} (need {params.min_samples}): "
                                "stays")
        elif cheaper_tier:
            result.notes.append(f"{task}: stays on {tier} ({here.describe(tier)}); only {cheaper.n} requests "
                                f"explored {cheaper_tier} (need {params.min_samples})")
        if target != tier:
            new_assignments[task] = target
            result.changes.append(Change(f"assignments.{task}", tier, target, reason, counts))
        # Exploration: one tier below the (new) assignment.
        t_rank = rank[target]
        share = 0.0
        if t_rank > 0:
            below = table.get((task, tiers[t_rank - 1]), empty)
            share = params.explore_share if below.n < params.min_samples else params.explore_min_share
        old_share = float(exploration.get(task, 0.0))
        if share:
            new_exploration[task] = share
        else:
            new_exploration.pop(task, None)
        if abs(share - old_share) > 1e-9:
            why = (f"explore {tiers[t_rank - 1]} ({table.get((task, tiers[t_rank - 1]), empty).n} samples)"
                   if share else f"{target} is the cheapest tier: nothing to explore")
            result.changes.append(Change(f"exploration.{task}", old_share, share, why, counts))
    return result
