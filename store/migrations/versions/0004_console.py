"""The reviewer console: what a reviewer reads, fast queue pages, browser sessions.

- audit_log: `route_reason` (why this tier), `checks` (each validator's score, verdict, reason and
  evidence), `prompt_json` (the structured prompt: messages and tools; kept or dropped with
  `prompt` by the content policy, redacted the same way), and an index on `tier`.
- review_items: `spot_check` (copied from the audit row, so the queue filters on it without a
  join) and `(state, id)` / `(state, task_type, id)` indexes: the queue's keyset pages stay
  index-only at 100k items.
- console_sessions: one row per signed-in browser. The cookie holds a random token; only its
  sha256 is stored, beside the CSRF token and the expiry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("route_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("checks", JSON, nullable=True))
        batch.add_column(sa.Column("prompt_json", JSON, nullable=True))
    op.create_index(op.f("ix_audit_log_tier"), "audit_log", ["tier"])

    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("spot_check", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        "UPDATE review_items SET spot_check = (SELECT audit_log.spot_check FROM audit_log "
        "WHERE audit_log.id = review_items.audit_id) "
        "WHERE audit_id IN (SELECT id FROM audit_log WHERE spot_check)"
    )
    op.create_index("ix_review_items_state_id", "review_items", ["state", "id"])
    op.create_index("ix_review_items_state_task_type_id", "review_items", ["state", "task_type", "id"])

    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_index("ix_review_items_state_task_type_id", table_name="review_items")
    op.drop_index("ix_review_items_state_id", table_name="review_items")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("spot_check")
    op.drop_index(op.f("ix_audit_log_tier"), table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("prompt_json")
        batch.drop_column("checks")
        batch.drop_column("route_reason")
