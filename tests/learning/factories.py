"""Builders for the learning tests: audit samples in memory, and audit/review rows in a database."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from core.records import AuditRecord
from learning.types import AuditSample, Review, Step
from store.db import session_factory
from store.models import AuditLog, ReviewItem
from store.redact import prepare_row
from store.writer import AuditWriter

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def sample(
    i: int,
    *,
    task: str = "chat",
    tier: str = "fast",
    status: str = "approved",
    confidence: float | None = 8.0,
    tiers: Sequence[str] | None = None,
    scores: dict[str, float] | None = None,
    review: str | None = None,
    review_score: float | None = None,
    created: datetime | None = None,
) -> AuditSample:
    """One audit sample; `tiers` is the cascade path (default: just `tier`)."""
    path = list(tiers or [tier])
    steps = tuple(Step(t, confidence if k == len(path) - 1 else 2.0, 0.001) for k, t in enumerate(path))
    return AuditSample(
        id=i,
        created_at=created or NOW - timedelta(minutes=i % 600),
        task_type=task,
        tier=path[-1],
        status=status,
        confidence=confidence,
        escalations=len(path) - 1,
        cost=0.001 * len(path),
        steps=steps,
        validator_scores=scores or {},
        review=Review(review, review_score) if review else None,
    )


def verdict_rows(
    n: int,
    detectors: dict[str, tuple[float, float]],
    *,
    p_good: float = 0.7,
    seed: int = 1,
    start: int = 0,
) -> list[AuditSample]:
    """`n` reviewed samples; detectors: name -> (P(objects | bad), P(objects | good))."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        good = rng.random() < p_good
        scores = {}
        for name, (detect, false_alarm) in detectors.items():
            fires = rng.random() < (false_alarm if good else detect)
            scores[name] = rng.uniform(0.0, 3.0) if fires else rng.uniform(8.0, 10.0)
        out.append(sample(start + i, scores=scores, review="approved" if good else "rejected"))
    return out


# -- database rows --------------------------------------------------------------------------------


def record(i: int, *, task: str, tiers: Sequence[str], status: str = "approved", confidence: float = 8.5,
           created: datetime | None = None, scores: dict[str, float] | None = None) -> AuditRecord:
    steps: list[Any] = [{"tier": t, "model": f"fake-{t}", "score": confidence if k == len(tiers) - 1 else 2.0,
                         "cost": 0.001, "latency_ms": 5.0} for k, t in enumerate(tiers)]
    return AuditRecord(
        request_id=f"req-{i}", created_at=created or datetime.now(UTC) - timedelta(minutes=5),
        caller="agent", route="/v1/chat/completions", task_type=task, tier=tiers[-1],
        served_model=f"fake-{tiers[-1]}", escalations=len(tiers) - 1, steps=steps,
        validator_scores=scores or {"non_empty": 10.0}, confidence=confidence, status=status,  # type: ignore[arg-type]
        cost=0.001 * len(tiers), prompt=f"prompt {i}", output=f"output {i}",
    )


def write_records(engine: Engine, records: Iterable[AuditRecord]) -> None:
    AuditWriter(engine).write([prepare_row(r, "review_only") for r in records])  # type: ignore[arg-type]


def add_review(engine: Engine, request_id: str, state: str, score: float | None = None) -> None:
    """Attach a resolved review item (a verdict) to the audit row `request_id`."""
    with session_factory(engine)() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.request_id == request_id)).one()
        item = session.scalars(select(ReviewItem).where(ReviewItem.audit_id == audit.id)).first()
        if item is None:
            item = ReviewItem(audit_id=audit.id, request_id=request_id, task_type=audit.task_type, tier=audit.tier,
                              caller=audit.caller, confidence=audit.confidence, state=state)
            session.add(item)
        item.state = state
        item.score = score
        item.verdict = {"approved": "approve", "rejected": "reject", "corrected": "correct"}.get(state)
        item.reviewer = "test"
        session.commit()
