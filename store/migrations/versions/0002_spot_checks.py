"""audit_log.spot_check: warning/approved answers sampled into the review queue.

Without a sample of the answers the gate let through, reviewers only ever see pending_review
answers and the thresholds cycle cannot measure how often `approved` answers are right.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("spot_check", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("spot_check")
