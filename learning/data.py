"""Reading what the cycles need from the database (blocking; run it in a thread from async code).

- `load_samples(session, since, until)`: audit rows created in [since, until) with their review
  item's state and rating, as `AuditSample`s (offline calls, which the client SDK made to a local
  model while the gateway was unreachable, are left out: no tier, no gate).
- `load_threshold_history(session, initial)`: the thresholds each stored version carried, from
  when it was created, plus the config's (`initial`) before the first one: the drift clamp
  compares against the value that served 24 h earlier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from learning.types import AuditSample, Review, Step, ThresholdPoint
from store.models import AuditLog, ReviewItem
from store.queries import list_learned_states

# The oldest point of the history: "the config's values, since before any learned version".
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _scores(raw: Any) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, float] = {}
    for name, value in raw.items():
        number = _float(value)
        if number is not None:
            out[str(name)] = number
    return out


def _step(raw: Any) -> Step | None:
    if not isinstance(raw, Mapping):
        return None
    tier = raw.get("tier")
    scores = raw.get("validator_scores")
    return Step(
        tier=str(tier) if tier is not None else None,
        score=_float(raw.get("score")),
        cost=_float(raw.get("cost")) or 0.0,
        error=str(raw["error"]) if raw.get("error") else None,
        validator_scores=_scores(scores) if scores is not None else None,
    )


def load_samples(
    session: Session, since: datetime, until: datetime | None = None, *, max_rows: int = 200_000
) -> list[AuditSample]:
    """Audit rows created in [since, until), newest `max_rows` at most, oldest first."""
    stmt = (
        select(
            AuditLog.id,
            AuditLog.created_at,
            AuditLog.task_type,
            AuditLog.tier,
            AuditLog.status,
            AuditLog.confidence,
            AuditLog.escalations,
            AuditLog.cost,
            AuditLog.steps,
            AuditLog.validator_scores,
            ReviewItem.state,
            ReviewItem.score,
        )
        .outerjoin(ReviewItem, ReviewItem.audit_id == AuditLog.id)
        .where(AuditLog.created_at >= since, AuditLog.offline.is_(False))
        .order_by(AuditLog.id.desc())
        .limit(max_rows)
    )
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    samples = []
    for row in session.execute(stmt):
        steps = tuple(s for s in (_step(raw) for raw in (row.steps or [])) if s is not None)
        samples.append(
            AuditSample(
                id=int(row.id),
                created_at=row.created_at,
                task_type=row.task_type,
                tier=row.tier,
                status=row.status,
                confidence=_float(row.confidence),
                escalations=int(row.escalations or 0),
                cost=_float(row.cost) or 0.0,
                steps=steps,
                validator_scores=_scores(row.validator_scores),
                review=Review(row.state, _float(row.score)) if row.state is not None else None,
            )
        )
    samples.reverse()
    return samples


def load_threshold_history(session: Session, initial: ThresholdPoint, *, limit: int = 500) -> list[ThresholdPoint]:
    """`initial` (moved to EPOCH) followed by each stored version's thresholds, oldest first."""
    points = [ThresholdPoint(EPOCH, initial.review, initial.approved)]
    for row in reversed(list_learned_states(session, limit=limit)):
        thresholds = (row.state or {}).get("thresholds") or {}
        review = _float(thresholds.get("review"))
        approved = _float(thresholds.get("approved"))
        if review is not None and approved is not None:
            points.append(ThresholdPoint(row.created_at, review, approved))
    return points
