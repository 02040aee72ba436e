"""Retention: delete audit rows older than N days, in small transactions.

`purge_older_than(engine, days)` deletes in batches of `batch_size` ids (one short transaction
each: `DELETE ... WHERE id IN (<ids selected with LIMIT>)`), so PostgreSQL never holds one huge
transaction, its locks and its dead tuples, and autovacuum keeps up; on SQLite each batch
releases the write lock so the audit sink is not blocked for long.

Review items go with their audit rows, with one exception: an audit row whose review item is
still `pending` is kept (with its item) whatever its age. A human queue must not empty itself
silently; once the item is resolved, the next purge takes both. Resolved verdicts older than the
retention period are deleted with their rows: the learning worker only learns from the window
that is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, exists, select

from store.models import AuditLog, ReviewItem


def purge_older_than(engine: Engine, days: float, batch_size: int = 5000, *, now: datetime | None = None) -> int:
    """Delete audit rows (and their resolved review items) older than `days`; returns how many."""
    if days < 0:
        raise ValueError("days must be >= 0")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    pending_review = exists().where(and_(ReviewItem.audit_id == AuditLog.id, ReviewItem.state == "pending"))
    total = 0
    last_id = 0
    while True:
        with engine.begin() as connection:
            ids = list(
                connection.scalars(
                    select(AuditLog.id)
                    .where(AuditLog.created_at < cutoff, AuditLog.id > last_id, ~pending_review)
                    .order_by(AuditLog.id)
                    .limit(batch_size)
                )
            )
            if not ids:
                return total
            connection.execute(delete(ReviewItem).where(ReviewItem.audit_id.in_(ids)))
            connection.execute(delete(AuditLog).where(AuditLog.id.in_(ids)))
        total += len(ids)
        last_id = ids[-1]
