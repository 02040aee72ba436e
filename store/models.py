"""The database schema: audit log, review queue, learned state, API keys.

SQLAlchemy 2 declarative models with typed `Mapped[...]` columns. The same metadata runs on SQLite
(the embedded default) and PostgreSQL (production):

- JSON columns are `sqlalchemy.JSON`, JSONB on PostgreSQL (`JSONType`).
- Integer primary keys are BIGINT on PostgreSQL and INTEGER on SQLite (SQLite only auto-increments
  an `INTEGER PRIMARY KEY`).
- Timestamps are `UTCDateTime`: `timestamptz` on PostgreSQL, naive-UTC text on SQLite, and always a
  tz-aware UTC `datetime` in Python on both.
- Constraint and index names come from a naming convention, so the Alembic migrations in
  `store/migrations/` name them identically on both databases.

The schema is owned by the migrations: `store.db.migrate(url)` creates it; `Base.metadata` is the
reference the migrations are checked against (tests compare the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON on SQLite (stored as text), JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# BIGINT identity on PostgreSQL, INTEGER PRIMARY KEY (rowid alias, auto-increment) on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always a tz-aware UTC `datetime` in Python.

    Binds: a naive value is taken to be UTC; an aware one is converted to UTC (and stored naive on
    SQLite, which has no time zones, so text comparisons stay correct). Results: naive values
    (SQLite) get UTC attached; aware ones (PostgreSQL `timestamptz`) are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


class AuditLog(Base):
    """One row per gateway call (or per call the client SDK made while offline: `offline`)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    caller: Mapped[str] = mapped_column(String, index=True)
    route: Mapped[str] = mapped_column(String)
    task_type: Mapped[str | None] = mapped_column(String, index=True)
    requested_model: Mapped[str | None] = mapped_column(String)
    tier: Mapped[str | None] = mapped_column(String, index=True)
    served_model: Mapped[str | None] = mapped_column(String)
    provider: Mapped[str | None] = mapped_column(String)
    deployment: Mapped[str | None] = mapped_column(String)
    # [{tier, provider, deployment, outcome, latency_ms, retry_after}]
    attempts: Mapped[list[Any]] = mapped_column()
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    # cascade steps: [{tier, model, score, cost, latency_ms}]
    steps: Mapped[list[Any]] = mapped_column()
    # {validator name: score}
    validator_scores: Mapped[dict[str, Any]] = mapped_column()
    confidence: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32), index=True)  # approved|warning|pending_review|error
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    error_class: Mapped[str | None] = mapped_column(String)
    session_id: Mapped[str | None] = mapped_column(String)
    prompt_hash: Mapped[str] = mapped_column(String(64))
    output_hash: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    offline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A warning/approved answer sampled for review (unbiased reviewer acceptance for the learner).
    spot_check: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    learned_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the state that decided
    # Why this tier (the x-gateway-route-reason header), for the reviewer.
    route_reason: Mapped[str | None] = mapped_column(Text)
    # Each validator: [{name, score, passed, reason, abstained, evidence?}]
    checks: Mapped[list[Any] | None] = mapped_column()
    # The structured prompt, under the same content policy as `prompt`: {messages, tools?}
    prompt_json: Mapped[dict[str, Any] | None] = mapped_column()


class ReviewItem(Base):
    """A low-confidence answer waiting for (or carrying) a human verdict; one per audit row."""

    __tablename__ = "review_items"
    __table_args__ = (
        Index("ix_review_items_state_created_at", "state", "created_at"),
        Index("ix_review_items_state_id", "state", "id"),
        Index("ix_review_items_state_task_type_id", "state", "task_type", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    audit_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("audit_log.id", ondelete="CASCADE"),
        unique=True,
    )
    request_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # pending|approved|rejected|corrected
    task_type: Mapped[str | None] = mapped_column(String)
    tier: Mapped[str | None] = mapped_column(String)
    caller: Mapped[str | None] = mapped_column(String)
    confidence: Mapped[float | None] = mapped_column(Float)
    reviewer: Mapped[str | None] = mapped_column(String)
    verdict: Mapped[str | None] = mapped_column(String(16))  # approve|reject|correct
    corrected_output: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    spot_check: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class LearnedState(Base):
    """One version of what the learning worker tuned; exactly one row is `active` at a time."""

    __tablename__ = "learned_state"
    __table_args__ = (
        # At most one active version (partial unique index; both databases support it).
        Index(
            "uq_learned_state_active",
            "active",
            unique=True,
            sqlite_where=text("active = 1"),
            postgresql_where=text("active"),
        ),
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[dict[str, Any]] = mapped_column()  # validator weights, thresholds, tier assignments
    reasons: Mapped[dict[str, Any]] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    source: Mapped[str] = mapped_column(String)


class ApiKey(Base):
    """A caller's key: only its sha256 hash and an 8-character display prefix are stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String(16))  # agent|reviewer|admin
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class ConsoleSession(Base):
    """A browser signed in to the reviewer console; the cookie's token is stored only hashed."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String(16))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
