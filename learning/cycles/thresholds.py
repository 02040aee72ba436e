"""The gate-thresholds cycle (every 12 h): keep `approved` honest and the review queue in budget.

approved
    The lowest value (on a 0.1 grid) at which reviewers accept at least `approve_target` (95 %)
    of the reviewed answers scoring at or above it, counted only where at least `min_tail`
    verdicts lie at or above. The reviewed answers here are the random spot checks of `warning`
    and `approved` answers (all sampled at the same rate; the `pending_review` ones, all
    reviewed, would outweigh them and are left to the review threshold). If no
    value reaches the target, the proposal is 10 (raise as far as the clamp allows). With fewer
    than `min_tail` verdicts above the review band at all (no spot checks), `approved` stays:
    verdicts on `pending_review` answers alone say nothing about the approved band.
review
    Where a reviewer is as likely to reject as to accept: the 50 % point of a logistic fit of
    the verdict on the confidence (sampling on the confidence, as the review queue does, leaves
    that fit unbiased). Never so high that more than `review_budget` (10 %) of the answered
    traffic would be `pending_review`; without a usable fit (no separation), only the budget
    moves it.
Bounds
    Each threshold drifts at most `max_drift` (0.5) from its value `drift_window` (24 h) earlier,
    taken from the history of states (the config's values before the first learned one); when
    the clamp bites the result says `clamped` and why. `0 <= review <= approved - min_gap`
    always holds: if the clamps make that impossible, nothing moves. Changes under
    `min_change` are not made (no new version for noise).
Minimums
    Fewer than `min_reviewed` verdicts, or fewer than `min_reviewed` answered calls with a
    confidence: no change. The review threshold's fit needs both accepted and rejected verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from learning.stats import logistic_fit
from learning.types import AuditSample, Change, CycleResult, ThresholdPoint, verdict_label

GRID = [i / 10 for i in range(101)]


@dataclass(frozen=True, slots=True)
class ThresholdParams:
    approve_target: float = 0.95
    review_budget: float = 0.10
    min_reviewed: int = 100
    min_tail: int = 30
    max_drift: float = 0.5
    drift_window_h: float = 24.0
    min_gap: float = 0.5
    min_change: float = 0.05
    l2: float = 0.01
    corrected_good_score: float = 7.0


def baseline(history: Sequence[ThresholdPoint], now: datetime, window: timedelta,
             current: ThresholdPoint) -> ThresholdPoint:
    """The thresholds that served `window` before `now`: the latest point at or before then,
    else the earliest known point (the config's), else the current values."""
    cutoff = now - window
    before = [p for p in history if p.at <= cutoff]
    if before:
        return max(before, key=lambda p: p.at)
    if history:
        return min(history, key=lambda p: p.at)
    return current


def approved_proposal(labelled: Sequence[tuple[float, bool]], floor: float,
                      params: ThresholdParams) -> tuple[float | None, str, int]:
    """(value or None without evidence, why, verdicts at or above it)."""
    evaluated = False
    for t in GRID:
        if t < floor - 1e-9:
            continue
        tail = [good for confidence, good in labelled if confidence >= t - 1e-9]
        if len(tail) < params.min_tail:
            break
        evaluated = True
        rate = sum(tail) / len(tail)
        if rate >= params.approve_target:
            return t, f"reviewers accept {rate:.1%} of {len(tail)} reviewed answers at or above {t:.1f}", len(tail)
    if not evaluated:
        return None, (f"fewer than {params.min_tail} verdicts at or above {floor:.1f} (are warning/approved "
                      "answers spot-checked?)"), 0
    return 10.0, (f"no value from {floor:.1f} up has {params.approve_target:.0%} acceptance over "
                  f"{params.min_tail}+ verdicts"), 0


def review_proposal(labelled: Sequence[tuple[float, bool]], traffic: Sequence[float], current: float,
                    params: ThresholdParams) -> tuple[float, str]:
    budget_cap = 0.0
    for r in GRID:
        if sum(1 for c in traffic if c < r - 1e-9) / len(traffic) <= params.review_budget:
            budget_cap = r
    fit = logistic_fit([[c / 10] for c, _ in labelled], [g for _, g in labelled], l2=params.l2)
    slope = fit.coefficients[0]
    if slope > 0.5:
        even = max(0.0, min(10.0, -fit.intercept / slope * 10))
        why = f"reviewers reject half the answers at {even:.1f}"
    else:
        even = current
        why = "verdicts do not depend on the confidence (no fit)"
    if even > budget_cap:
        return budget_cap, (f"{why}, but at most {params.review_budget:.0%} of traffic may wait for review: "
                            f"{budget_cap:.1f}")
    return even, why


def thresholds_cycle(
    review: float,
    approved: float,
    samples: Sequence[AuditSample],
    history: Sequence[ThresholdPoint],
    now: datetime,
    params: ThresholdParams = ThresholdParams(),
) -> CycleResult:
    """New gate thresholds (see the module docstring). Pure: no I/O."""
    result = CycleResult("thresholds", {"thresholds": {"review": review, "approved": approved}})
    labelled = [(float(s.confidence), label) for s in samples if s.confidence is not None
                and (label := verdict_label(s.review, params.corrected_good_score)) is not None]
    traffic = [float(s.confidence) for s in samples if s.confidence is not None and s.status != "error"]
    result.samples = {"reviewed": len(labelled), "traffic": len(traffic),
                      "rejected": sum(1 for _, good in labelled if not good)}
    if len(labelled) < params.min_reviewed or len(traffic) < params.min_reviewed:
        result.notes.append(f"only {len(labelled)} verdicts and {len(traffic)} answered calls; need "
                            f"{params.min_reviewed} of each: thresholds unchanged")
        return result

    review_target, review_why = review_proposal(labelled, traffic, review, params)
    # Only spot checks (answers that were not pending_review) measure the approved band: pending
    # answers are all reviewed, spot checks a small share, so mixing them would weigh the band
    # below the review threshold many times over.
    spot_checked = [(float(s.confidence), label) for s in samples
                    if s.confidence is not None and s.status in ("warning", "approved")
                    and (label := verdict_label(s.review, params.corrected_good_score)) is not None]
    proposal, approved_why, tail = approved_proposal(spot_checked, review_target + params.min_gap, params)
    if proposal is None:
        result.notes.append(f"approved stays: {approved_why}")
    approved_target = approved if proposal is None else proposal

    base = baseline(history, now, timedelta(hours=params.drift_window_h), ThresholdPoint(now, review, approved))
    clamps: list[str] = []

    def clamp(name: str, target: float, base_value: float) -> float:
        low, high = base_value - params.max_drift, base_value + params.max_drift
        value = max(low, min(high, target))
        if abs(value - target) > 1e-9:
            clamps.append(f"{name} wanted {target:.2f}, held to {value:.2f} (at most {params.max_drift} from "
                          f"{base_value:.2f}, its value {params.drift_window_h:g} h earlier)")
        return round(value, 2)

    new_review = clamp("review", review_target, base.review)
    new_approved = clamp("approved", approved_target, base.approved)
    new_approved = min(10.0, max(0.0, new_approved))
    if new_review > new_approved - params.min_gap:
        new_review = round(max(base.review - params.max_drift, new_approved - params.min_gap), 2)
    new_review = max(0.0, new_review)
    if new_review > new_approved - params.min_gap + 1e-9:
        result.notes.append(f"review {review_target:.2f} and approved {approved_target:.2f} cannot both be met "
                            f"within the drift limit: thresholds unchanged")
        return result
    result.clamped = bool(clamps)
    result.notes.extend(clamps)
    samples_json = {"reviewed": len(labelled), "traffic": len(traffic)}
    values = {"review": review, "approved": approved}
    proposed = {"review": new_review, "approved": new_approved}
    for name, new, why, extra in (
        ("review", new_review, review_why, {}),
        ("approved", new_approved, approved_why, {"reviewed_at_or_above": tail}),
    ):
        old = values[name]
        # A change too small to matter is skipped, unless skipping it would break the order.
        other = proposed["approved"] if name == "review" else values["review"]
        ordered = old <= other - params.min_gap + 1e-9 if name == "review" else other <= old - params.min_gap + 1e-9
        if abs(new - old) < params.min_change and ordered:
            continue
        values[name] = new
        clamp_note = next((c for c in clamps if c.startswith(name)), "")
        reason = why + (f"; {clamp_note}" if clamp_note else "")
        result.changes.append(Change(f"thresholds.{name}", old, new, reason, {**samples_json, **extra}))
    result.values = {"thresholds": values}
    if not result.changes:
        result.notes.append(f"thresholds stay (review wants {review_target:.2f}: {review_why}; "
                            f"approved wants {approved_target:.2f}: {approved_why})")
    return result
