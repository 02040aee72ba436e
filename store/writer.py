"""Blocking, idempotent bulk writes of audit rows (run in worker threads by the sink and replay).

`AuditWriter.write(rows)` inserts a batch in ONE transaction:

1. `INSERT INTO audit_log ... ON CONFLICT (request_id) DO NOTHING` (SQLAlchemy's PostgreSQL and
   SQLite dialect inserts render the same clause; SQLite >= 3.24). A `request_id` already present
   is skipped, so replaying a spool twice, or a write that timed out but later committed, never
   duplicates a row. (Plain `INSERT OR IGNORE` is deliberately not used: it would also swallow
   NOT NULL violations, i.e. silently drop a bad row.)
2. For `pending_review` rows, a `review_items` row (state `pending`), also `ON CONFLICT (audit_id)
   DO NOTHING`.

Errors are sorted in two kinds. An *outage* (connection refused or lost, timeout, "database is
locked", missing table: anything but a data error) raises, and the caller spools the batch. A
*data error* (`IntegrityError`, `DataError`, or a value that cannot be bound) makes the writer
retry the batch row by row; rows that still fail are returned as dead-letter entries (with the
reason) for the spool's dead file instead of poisoning every retry of the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from core.records import row_to_json
from store.models import AuditLog, ReviewItem

log = logging.getLogger(__name__)

_AUDIT: Table = AuditLog.__table__  # type: ignore[assignment]
_REVIEW: Table = ReviewItem.__table__  # type: ignore[assignment]


def insert_ignore(connection: Connection, table: Table, key: str) -> Insert:
    """`INSERT ... ON CONFLICT (key) DO NOTHING` for the connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    if connection.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])
    raise NotImplementedError(f"unsupported database dialect {connection.dialect.name!r}")


def is_data_error(exc: BaseException) -> bool:
    """True when `exc` is about the rows themselves (retrying the same rows cannot help)."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return False
        return isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError)
    if isinstance(exc, sa_exc.StatementError):  # a value that failed to bind (not a DB error)
        return True
    return isinstance(exc, TypeError | ValueError)


def describe(exc: BaseException) -> str:
    """A short description for logs: class names and the first line only (no row contents)."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    message = first[0][:200] if first else ""
    return f"{type(exc).__name__}: {message}"


class AuditWriter:
    """Writes audit rows (see the module docstring). Thread-safe: one transaction per call."""

    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = 5000) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms

    def probe(self) -> None:
        """Raise unless the database answers (and the audit table exists)."""
        with self.engine.connect() as connection:
            self._set_timeout(connection)
            connection.execute(select(_AUDIT.c.id).limit(1)).all()

    def write(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store `rows`; return dead-letter entries for rows rejected as data. Raises on outage."""
        if not rows:
            return []
        try:
            self._write(rows)
            return []
        except Exception as exc:
            if not is_data_error(exc) or len(rows) == 1:
                if len(rows) == 1 and is_data_error(exc):
                    return [self._dead(rows[0], exc)]
                raise
        dead = []
        for row in rows:
            try:
                self._write([row])
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                dead.append(self._dead(row, exc))
        return dead

    def _dead(self, row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        log.error("audit row %s rejected by the database: %s", row.get("request_id"), describe(exc))
        return {"reason": describe(exc), "row": row_to_json(row)}

    def _set_timeout(self, connection: Connection) -> None:
        if self.statement_timeout_ms and connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT set_config('statement_timeout', :value, true)"),
                {"value": f"{int(self.statement_timeout_ms)}ms"},
            )

    def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            self._set_timeout(connection)
            connection.execute(insert_ignore(connection, _AUDIT, "request_id"), list(rows))
            pending = {row["request_id"]: row for row in rows
                       if row.get("status") == "pending_review" or row.get("spot_check")}
            if not pending:
                return
            found = connection.execute(
                select(_AUDIT.c.id, _AUDIT.c.request_id).where(
                    _AUDIT.c.request_id.in_(list(pending)),
                    (_AUDIT.c.status == "pending_review") | _AUDIT.c.spot_check,
                ).order_by(_AUDIT.c.id)  # review items in the order of their calls (reviewers work oldest first)
            ).all()
            now = datetime.now(UTC)
            items = [
                {
                    "audit_id": audit_id,
                    "request_id": request_id,
                    "state": "pending",
                    "task_type": pending[request_id].get("task_type"),
                    "tier": pending[request_id].get("tier"),
                    "caller": pending[request_id].get("caller"),
                    "confidence": pending[request_id].get("confidence"),
                    "spot_check": bool(pending[request_id].get("spot_check")),
                    "created_at": pending[request_id].get("created_at") or now,
                    "updated_at": now,
                }
                for audit_id, request_id in found
            ]
            if items:
                connection.execute(insert_ignore(connection, _REVIEW, "audit_id"), items)
