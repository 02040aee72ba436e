"""Reads and small writes for the review API, the auth layer and the learning worker.

Every function takes a `Session` (from `store.db.session_factory`, which keeps returned rows
readable after the session closes) and is blocking: async callers use `asyncio.to_thread`.
Functions that write commit their own transaction; reads leave the session as it was.

Paging is keyset paging on `id`: a `Page` carries `next_cursor` (the last id of the page, or
None on the last page); pass it back as `cursor` for the next page. Audit rows come newest first,
review items oldest first (the order a reviewer works in); both take `order=`.

Errors are `StoreError` subclasses: `NotFound`, `NotPending` (verdict on a resolved item),
`InvalidInput`, `Conflict` (e.g. an API key name already used).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from store.models import ApiKey, AuditLog, LearnedState, ReviewItem
from store.redact import redact

T = TypeVar("T")
Order = Literal["asc", "desc"]
Verdict = Literal["approve", "reject", "correct"]
Role = Literal["agent", "reviewer", "admin"]

VERDICT_STATES: dict[str, str] = {"approve": "approved", "reject": "rejected", "correct": "corrected"}
REVIEW_STATES: tuple[str, ...] = ("pending", "approved", "rejected", "corrected")
ROLES: tuple[str, ...] = ("agent", "reviewer", "admin")
API_KEY_PREFIX = "gwk_"
MAX_PAGE = 500


class StoreError(Exception):
    """Base of the errors `store.queries` raises."""


class NotFound(StoreError):
    pass


class NotPending(StoreError):
    """A verdict was applied to a review item that is no longer pending."""


class InvalidInput(StoreError):
    pass


class Conflict(StoreError):
    pass


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: int | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _page(
    session: Session, stmt: Select[Any], id_column: Any, cursor: int | None, order: Order, limit: int
) -> Page[Any]:
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be 'asc' or 'desc'")
    limit = max(1, min(int(limit), MAX_PAGE))
    if cursor is not None:
        stmt = stmt.where(id_column < cursor if order == "desc" else id_column > cursor)
    stmt = stmt.order_by(id_column.desc() if order == "desc" else id_column.asc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=rows[-1].id if more and rows else None)


# -- audit --------------------------------------------------------------------------------------


def list_audit(
    session: Session,
    *,
    caller: str | None = None,
    task_type: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offline: bool | None = None,
    cursor: int | None = None,
    limit: int = 50,
    order: Order = "desc",
) -> Page[AuditLog]:
    """Audit rows matching every given filter; `since` inclusive, `until` exclusive."""
    stmt = select(AuditLog)
    for column, value in (
        (AuditLog.caller, caller),
        (AuditLog.task_type, task_type),
        (AuditLog.tier, tier),
        (AuditLog.status, status),
        (AuditLog.offline, offline),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditLog.created_at < until)
    return _page(session, stmt, AuditLog.id, cursor, order, limit)


def get_audit(session: Session, audit_id: int) -> AuditLog | None:
    return session.get(AuditLog, audit_id)


def get_audit_by_request_id(session: Session, request_id: str) -> AuditLog | None:
    return session.scalars(select(AuditLog).where(AuditLog.request_id == request_id)).first()


# -- review queue -------------------------------------------------------------------------------


def list_review_items(
    session: Session,
    *,
    state: str | None = None,
    task_type: str | None = None,
    tier: str | None = None,
    caller: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
    order: Order = "asc",
) -> Page[ReviewItem]:
    if state is not None and state not in REVIEW_STATES:
        raise InvalidInput(f"state must be one of {REVIEW_STATES}")
    stmt = select(ReviewItem)
    for column, value in (
        (ReviewItem.state, state),
        (ReviewItem.task_type, task_type),
        (ReviewItem.tier, tier),
        (ReviewItem.caller, caller),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return _page(session, stmt, ReviewItem.id, cursor, order, limit)


def get_review_item(session: Session, item_id: int) -> ReviewItem | None:
    return session.get(ReviewItem, item_id)


def apply_verdict(
    session: Session,
    item_id: int,
    verdict: Verdict,
    *,
    reviewer: str,
    corrected_output: str | None = None,
    score: float | None = None,
    notes: str | None = None,
) -> ReviewItem:
    """Resolve a pending review item; commits. Raises NotFound, NotPending or InvalidInput.

    `correct` needs `corrected_output`; `score` (0-10) is the reviewer's rating of the answer.
    The conditional UPDATE (`WHERE state = 'pending'`) makes two racing reviewers safe: one wins,
    the other gets NotPending. Corrected output and notes are redacted like audit content.
    """
    if verdict not in VERDICT_STATES:
        raise InvalidInput(f"verdict must be one of {tuple(VERDICT_STATES)}")
    if not reviewer:
        raise InvalidInput("reviewer is required")
    if verdict == "correct" and not corrected_output:
        raise InvalidInput("a 'correct' verdict needs corrected_output")
    if verdict != "correct" and corrected_output is not None:
        raise InvalidInput("corrected_output is only for a 'correct' verdict")
    if score is not None and not 0 <= score <= 10:
        raise InvalidInput("score must be between 0 and 10")
    result = session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, ReviewItem.state == "pending")
        .values(
            state=VERDICT_STATES[verdict],
            verdict=verdict,
            reviewer=reviewer,
            corrected_output=redact(corrected_output) if corrected_output else None,
            score=score,
            notes=redact(notes) if notes else notes,
            updated_at=_utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    updated = getattr(result, "rowcount", 0)
    session.commit()
    item = session.get(ReviewItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"review item {item_id} not found")
    if updated != 1:
        raise NotPending(f"review item {item_id} is already {item.state}")
    return item


def pending_review_stats(session: Session, *, now: datetime | None = None) -> tuple[int, float]:
    """(number of pending review items, age in seconds of the oldest; 0.0 when none)."""
    count, oldest = session.execute(
        select(func.count(ReviewItem.id), func.min(ReviewItem.created_at)).where(ReviewItem.state == "pending")
    ).one()
    if not count or oldest is None:
        return 0, 0.0
    if isinstance(oldest, str):  # SQLite aggregates bypass the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(0.0, ((now or _utcnow()) - oldest).total_seconds())


# -- API keys -----------------------------------------------------------------------------------


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_api_key(session: Session, name: str, role: Role = "agent") -> tuple[ApiKey, str]:
    """Create a key; returns (row, plaintext). The plaintext is never stored: show it once."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {ROLES}")
    if not name:
        raise InvalidInput("name is required")
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, role=role, key_hash=hash_api_key(plaintext), prefix=plaintext[:8], created_at=_utcnow())
    session.add(key)
    try:
        session.commit()
    except sa_exc.IntegrityError as exc:
        session.rollback()
        raise Conflict(f"an API key named {name!r} already exists") from exc
    return key, plaintext


def list_api_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(stmt))


def revoke_api_key(session: Session, name: str) -> ApiKey:
    """Revoke the key called `name` (idempotent); commits. Raises NotFound."""
    key = session.scalars(select(ApiKey).where(ApiKey.name == name)).first()
    if key is None:
        raise NotFound(f"no API key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = _utcnow()
        session.commit()
    return key


def lookup_api_key(session: Session, key_hash: str) -> ApiKey | None:
    """The live (not revoked) key with this sha256 hash (see `hash_api_key`), or None."""
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))).first()


# -- learned state ------------------------------------------------------------------------------


def save_learned_state(
    session: Session,
    state: dict[str, Any],
    reasons: dict[str, Any] | None = None,
    *,
    source: str,
    activate: bool = True,
) -> LearnedState:
    """Store `state` as the next version (max + 1), active by default; commits."""
    for _ in range(3):  # two writers racing for the same version number: retry
        version = (session.scalar(select(func.max(LearnedState.version))) or 0) + 1
        if activate:
            session.execute(update(LearnedState).where(LearnedState.active.is_(True)).values(active=False))
        row = LearnedState(
            version=version,
            created_at=_utcnow(),
            state=state,
            reasons=reasons or {},
            active=activate,
            source=source,
        )
        session.add(row)
        try:
            session.commit()
        except sa_exc.IntegrityError:
            session.rollback()
            continue
        return row
    raise Conflict("could not allocate a learned-state version (concurrent writers)")


def get_active_learned_state(session: Session) -> LearnedState | None:
    return session.scalars(select(LearnedState).where(LearnedState.active.is_(True))).first()


def list_learned_states(session: Session, *, limit: int = 50) -> list[LearnedState]:
    """Newest version first."""
    stmt = select(LearnedState).order_by(LearnedState.version.desc()).limit(max(1, min(limit, MAX_PAGE)))
    return list(session.scalars(stmt))


def activate_learned_state(session: Session, version: int) -> LearnedState:
    """Make `version` the only active one (rollback or roll forward); commits. Raises NotFound."""
    row = session.get(LearnedState, version)
    if row is None:
        raise NotFound(f"learned state version {version} not found")
    session.execute(
        update(LearnedState).where(LearnedState.active.is_(True), LearnedState.version != version).values(active=False)
    )
    row.active = True
    session.commit()
    session.refresh(row)
    return row
