"""Store queries for the reviewer console: browser sessions, the filtered queue, its counts.

Sessions: `create_session` makes a random token (returned once, for the cookie) and stores only
its sha256 with the caller, the role, a CSRF token and the expiry; `get_session` answers None for
an unknown or expired token; `delete_session` is sign-out.

The queue: `QueueFilter` is what a reviewer filters on (task type, tier, caller, kind: pending
review or spot check, age, and the review state, `pending` by default). `queue_page` pages it by
keyset on `id` (oldest first), so a page costs the same at item 10 and at item 100,000 (the
`(state, id)` and `(state, task_type, id)` indexes of migration 0004); `queue_counts` gives the
counts a filter bar shows; `neighbour` is the next (or previous) item for the j/k keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from store.models import ConsoleSession, ReviewItem
from store.queries import MAX_PAGE, REVIEW_STATES, InvalidInput, Page

Kind = Literal["pending_review", "spot_check"]
KINDS: tuple[str, ...] = ("pending_review", "spot_check")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- sessions -----------------------------------------------------------------------------------


def create_session(session: Session, caller: str, role: str, ttl_s: float) -> tuple[ConsoleSession, str]:
    """A new console session; returns (row, token). Only the token's sha256 is stored. Commits."""
    token = secrets.token_urlsafe(32)
    now = _utcnow()
    row = ConsoleSession(token_hash=token_hash(token), caller=caller, role=role, csrf=secrets.token_urlsafe(32),
                         created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(row)
    # Expired sessions go as new ones come: the table holds live browsers only.
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    session.commit()
    return row, token


def get_session(session: Session, token: str, *, now: datetime | None = None) -> ConsoleSession | None:
    """The live session for the cookie's `token`, or None (unknown, or past its expiry)."""
    row = session.get(ConsoleSession, token_hash(token))
    if row is None or row.expires_at <= (now or _utcnow()):
        return None
    return row


def delete_session(session: Session, token: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash(token)))
    session.commit()


# -- the queue ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueFilter:
    state: str = "pending"
    task_type: str | None = None
    tier: str | None = None
    caller: str | None = None
    kind: str | None = None  # pending_review | spot_check
    min_age_s: float | None = None  # at least this old
    max_age_s: float | None = None  # at most this old

    def __post_init__(self) -> None:
        if self.state not in REVIEW_STATES:
            raise InvalidInput(f"state must be one of {', '.join(REVIEW_STATES)}")
        if self.kind is not None and self.kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")

    def where(self, stmt: Select[Any], *, skip: str | None = None, now: datetime | None = None) -> Any:
        """`stmt` narrowed by every filter but `skip` (a count per value ignores its own filter)."""
        stmt = stmt.where(ReviewItem.state == self.state)
        for name, column in (("task_type", ReviewItem.task_type), ("tier", ReviewItem.tier),
                             ("caller", ReviewItem.caller)):
            value = getattr(self, name)
            if value is not None and name != skip:
                stmt = stmt.where(column == value)
        if self.kind is not None and skip != "kind":
            stmt = stmt.where(ReviewItem.spot_check.is_(self.kind == "spot_check"))
        now = now or _utcnow()
        if self.min_age_s is not None:
            stmt = stmt.where(ReviewItem.created_at <= now - timedelta(seconds=self.min_age_s))
        if self.max_age_s is not None:
            stmt = stmt.where(ReviewItem.created_at >= now - timedelta(seconds=self.max_age_s))
        return stmt


def queue_page(session: Session, flt: QueueFilter, *, cursor: int | None = None, limit: int = 50,
               before: int | None = None) -> Page[ReviewItem]:
    """Items matching `flt`, oldest first, after `cursor` (the previous page's next_cursor).

    `before`: the page that ends just before this id (paging back), still oldest first.
    """
    limit = max(1, min(int(limit), MAX_PAGE))
    stmt = flt.where(select(ReviewItem))
    if before is not None:
        rows = list(session.scalars(stmt.where(ReviewItem.id < before).order_by(ReviewItem.id.desc()).limit(limit)))
        rows.reverse()
        return Page(items=rows, next_cursor=rows[-1].id if rows else None)
    if cursor is not None:
        stmt = stmt.where(ReviewItem.id > cursor)
    rows = list(session.scalars(stmt.order_by(ReviewItem.id.asc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=rows[-1].id if more and rows else None)


def queue_total(session: Session, flt: QueueFilter) -> int:
    return int(session.scalar(flt.where(select(func.count(ReviewItem.id)))) or 0)


def queue_counts(session: Session, flt: QueueFilter) -> dict[str, dict[str, int]]:
    """For each filter (task_type, tier, caller, kind): {value: items matching the other filters}."""
    out: dict[str, dict[str, int]] = {}
    for name, column in (("task_type", ReviewItem.task_type), ("tier", ReviewItem.tier),
                         ("caller", ReviewItem.caller), ("kind", ReviewItem.spot_check)):
        stmt = flt.where(select(column, func.count(ReviewItem.id)), skip=name).group_by(column)  # type: ignore[arg-type]
        counts: dict[str, int] = {}
        for value, count in session.execute(stmt):
            if name == "kind":
                key = "spot_check" if value else "pending_review"
            else:
                key = "" if value is None else str(value)
            counts[key] = int(count)
        out[name] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def neighbour(session: Session, flt: QueueFilter, item_id: int, *, forward: bool = True) -> int | None:
    """The id of the next (or previous) item matching `flt`; wraps around; None when there is none."""
    column = ReviewItem.id
    base = flt.where(select(column))
    step = base.where(column > item_id).order_by(column.asc()) if forward else \
        base.where(column < item_id).order_by(column.desc())
    found = session.scalar(step.limit(1))
    if found is None:  # wrap: the first (last) item, unless that is this one
        wrap = base.where(column != item_id).order_by(column.asc() if forward else column.desc())
        found = session.scalar(wrap.limit(1))
    return int(found) if found is not None else None
