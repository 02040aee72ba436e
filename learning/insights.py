"""The console's insight figures: pure functions over audit and review rows, plus their loader.

    savings_figures      actual cost against each single tier (always-large among them), by task
                         type and by day (learning/costs.py: the same arithmetic as the benches)
    escalation_figures   how often the cascade escalated, by task type, and why
    confidence_figures   a histogram of confidence in 1-point bands, with the reviewers'
                         acceptance per band (is 7 really "approved"?)
    queue_figures        review queue depth and age
    provider_figures     attempts, failures, failovers and cool-downs per provider
    state_diff           what changed between two learned-state versions

Error rows and offline rows are left out of cost and escalation figures (an error answered
nothing; offline calls never reached a tier). Acceptance uses `learning.types.verdict_label`, the
same reading of a verdict the learning cycles use.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from learning.costs import Price, savings
from learning.types import Review, verdict_label
from store.models import AuditLog, ReviewItem


@dataclass(frozen=True, slots=True)
class CallRow:
    """The audit columns the figures read."""

    created_at: datetime
    task_type: str | None
    tier: str | None
    status: str
    confidence: float | None
    escalations: int = 0
    cost: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    steps: Sequence[Mapping[str, Any]] = ()
    attempts: Sequence[Mapping[str, Any]] = ()
    offline: bool = False


@dataclass(frozen=True, slots=True)
class ReviewRow:
    created_at: datetime
    state: str  # pending | approved | rejected | corrected
    task_type: str | None = None
    confidence: float | None = None
    score: float | None = None
    spot_check: bool = False


@dataclass(slots=True)
class Data:
    calls: list[CallRow] = field(default_factory=list)
    reviews: list[ReviewRow] = field(default_factory=list)


def _served(rows: Iterable[CallRow]) -> list[CallRow]:
    return [r for r in rows if r.status != "error" and not r.offline]


def _day(value: datetime) -> str:
    return value.astimezone(UTC).date().isoformat()


def savings_figures(rows: Iterable[CallRow], prices: Mapping[str, Price]) -> dict[str, Any]:
    served = _served(rows)
    by_task: dict[str, list[CallRow]] = defaultdict(list)
    by_day: dict[str, list[CallRow]] = defaultdict(list)
    for row in served:
        by_task[row.task_type or "(none)"].append(row)
        by_day[_day(row.created_at)].append(row)

    def figure(group: list[CallRow]) -> dict[str, Any]:
        return savings(((r.cost, r.tokens_in, r.tokens_out) for r in group), prices)

    return {
        "tiers": list(prices),
        "total": figure(served),
        "by_task_type": {name: figure(group) for name, group in sorted(by_task.items())},
        "by_day": {day: figure(group) for day, group in sorted(by_day.items())},
    }


def escalation_reasons(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why each step but the last was not the answer: an upstream error, or a low score."""
    reasons = []
    for step in steps[:-1]:
        tier = step.get("tier") or "?"
        if step.get("error"):
            reasons.append(f"{tier}: {step['error']}")
        else:
            reasons.append(f"{tier}: low confidence")
    return reasons


def escalation_figures(rows: Iterable[CallRow]) -> dict[str, Any]:
    served = _served(rows)
    reasons: Counter[str] = Counter()
    per_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    escalated = 0
    for row in served:
        up = row.escalations > 0 or len(row.steps) > 1
        escalated += up
        counts = per_task[row.task_type or "(none)"]
        counts[0] += 1
        counts[1] += up
        reasons.update(escalation_reasons(row.steps))
    return {
        "calls": len(served),
        "escalated": escalated,
        "rate": escalated / len(served) if served else None,
        "by_task_type": {name: {"calls": c, "escalated": e, "rate": e / c}
                         for name, (c, e) in sorted(per_task.items())},
        "reasons": dict(reasons.most_common()),
    }


def band_of(confidence: float) -> int:
    """0..9: the 1-point band ([0,1) ... [9,10]) a confidence falls in."""
    return min(9, max(0, int(confidence)))


def confidence_figures(rows: Iterable[CallRow], reviews: Iterable[ReviewRow]) -> dict[str, Any]:
    bands: list[dict[str, Any]] = [
        {"band": f"{b}-{b + 1}", "low": b, "calls": 0, "reviewed": 0, "accepted": 0, "acceptance": None}
        for b in range(10)]
    for row in _served(rows):
        if row.confidence is not None:
            bands[band_of(row.confidence)]["calls"] += 1
    for review in reviews:
        label = verdict_label(Review(review.state, review.score))
        if label is None or review.confidence is None:
            continue
        band = bands[band_of(review.confidence)]
        band["reviewed"] += 1
        band["accepted"] += label
    for band in bands:
        if band["reviewed"]:
            band["acceptance"] = band["accepted"] / band["reviewed"]
    return {"bands": bands}


AGE_BUCKETS: tuple[tuple[str, float], ...] = (("< 1 h", 3600.0), ("1-24 h", 86400.0), ("1-7 d", 7 * 86400.0),
                                              ("> 7 d", float("inf")))


def queue_figures(reviews: Iterable[ReviewRow], now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    pending = [r for r in reviews if r.state == "pending"]
    ages = [(now - r.created_at).total_seconds() for r in pending]
    buckets = dict.fromkeys((name for name, _ in AGE_BUCKETS), 0)
    for age in ages:
        for name, limit in AGE_BUCKETS:
            if age < limit:
                buckets[name] += 1
                break
    by_task = Counter(r.task_type or "(none)" for r in pending)
    return {
        "depth": len(pending),
        "spot_checks": sum(r.spot_check for r in pending),
        "oldest_age_s": max(ages) if ages else 0.0,
        "by_age": buckets,
        "by_task_type": dict(sorted(by_task.items())),
    }


def provider_figures(rows: Iterable[CallRow]) -> dict[str, Any]:
    """Per provider: attempts, ok, failures, rate_limited, cooldown_s (the Retry-After they asked for);
    failovers: calls where one provider failed and another answered."""
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"attempts": 0, "ok": 0, "failures": 0, "rate_limited": 0, "cooldowns": 0, "cooldown_s": 0.0})
    failovers: Counter[str] = Counter()
    for row in rows:
        failed_before: list[str] = []
        for attempt in row.attempts:
            provider = str(attempt.get("provider") or attempt.get("deployment") or "?")
            stats = per[provider]
            stats["attempts"] += 1
            outcome = str(attempt.get("outcome") or "")
            if outcome == "ok":
                stats["ok"] += 1
                for failed in failed_before:
                    if failed != provider:
                        failovers[f"{failed} -> {provider}"] += 1
                failed_before = []
                continue
            stats["failures"] += 1
            failed_before.append(provider)
            if "ratelimit" in outcome.lower().replace("_", "") or outcome == "rate_limited":
                stats["rate_limited"] += 1
            if attempt.get("retry_after"):
                stats["cooldowns"] += 1
                stats["cooldown_s"] += float(attempt["retry_after"])
    return {"providers": dict(sorted(per.items())), "failovers": dict(failovers.most_common()),
            "failover_calls": sum(failovers.values())}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def state_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{key, old, new}] for every dotted key whose value differs (None: absent on that side)."""
    a, b = _flatten(old), _flatten(new)
    return [{"key": key, "old": a.get(key), "new": b.get(key)}
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


# -- loading ------------------------------------------------------------------------------------


def load(session: Session, since: datetime, until: datetime | None = None) -> Data:
    """The audit and review rows created in [since, until)."""
    columns = (AuditLog.created_at, AuditLog.task_type, AuditLog.tier, AuditLog.status, AuditLog.confidence,
               AuditLog.escalations, AuditLog.cost, AuditLog.tokens_in, AuditLog.tokens_out, AuditLog.steps,
               AuditLog.attempts, AuditLog.offline)
    stmt = select(*columns).where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    calls = [CallRow(created_at=r[0], task_type=r[1], tier=r[2], status=r[3], confidence=r[4],
                     escalations=r[5] or 0, cost=r[6] or 0.0, tokens_in=r[7] or 0, tokens_out=r[8] or 0,
                     steps=r[9] or (), attempts=r[10] or (), offline=bool(r[11]))
             for r in session.execute(stmt)]
    review_stmt = select(ReviewItem.created_at, ReviewItem.state, ReviewItem.task_type, ReviewItem.confidence,
                         ReviewItem.score, ReviewItem.spot_check).where(
        (ReviewItem.created_at >= since) | (ReviewItem.state == "pending"))
    reviews = [ReviewRow(created_at=r[0], state=r[1], task_type=r[2], confidence=r[3], score=r[4],
                         spot_check=bool(r[5])) for r in session.execute(review_stmt)]
    return Data(calls=calls, reviews=reviews)
