"""Schema, migrations and queries of the store, on SQLite and on the real PostgreSQL.

Every test runs against a fresh database: a SQLite file in a tmp dir, or a new PostgreSQL schema
(dropped afterwards), migrated with `store.db.migrate` exactly as the gateway does at start.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.records import AuditRecord
from store import queries as q
from store.db import make_engine, migrate, session_factory, sqlite_url
from store.models import AuditLog, Base, ReviewItem
from store.redact import prepare_row
from store.retention import purge_older_than
from store.writer import AuditWriter
from tests.support.services import TcpProxy, postgres_reachable, postgres_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data" / "gateway.db")
        return
    if not postgres_reachable():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    migrate(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def write(engine: Engine, *records: AuditRecord, policy: str = "review_only") -> None:
    AuditWriter(engine).write([prepare_row(r, policy) for r in records])  # type: ignore[arg-type]


def rec(i: int, **kw: object) -> AuditRecord:
    base: dict[str, object] = dict(
        request_id=f"req-{i}",
        created_at=T0 + timedelta(minutes=i),
        caller="agent-a" if i % 2 == 0 else "agent-b",
        route="/v1/chat/completions",
        task_type="code" if i % 3 else "chat",
        tier="fast",
        status="approved",
        prompt=f"prompt {i}",
        output=f"output {i}",
    )
    base.update(kw)
    return AuditRecord(**base)  # type: ignore[arg-type]


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_create_the_schema_and_match_the_models(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # idempotent: every gateway start runs it
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"audit_log", "review_items", "learned_state", "api_keys", "alembic_version"} <= tables
        indexed = {tuple(ix["column_names"]) for ix in inspect(engine).get_indexes("audit_log")}
        assert {("created_at",), ("status",), ("task_type",), ("caller",)} <= indexed
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []  # no drift
    finally:
        engine.dispose()


def test_rows_read_back_typed_and_tz_aware(engine: Engine, sessions: sessionmaker[Session]) -> None:
    local = datetime(2026, 3, 1, 14, 30, tzinfo=UTC).astimezone(datetime.now().astimezone().tzinfo or UTC)
    write(
        engine,
        rec(
            1,
            created_at=local,
            attempts=[
                {
                    "tier": "fast",
                    "provider": "ollama",
                    "deployment": "d1",
                    "outcome": "ok",
                    "latency_ms": 12.5,
                    "retry_after": None,
                }
            ],
            steps=[{"tier": "fast", "model": "m", "score": 8.5, "cost": 0.0, "latency_ms": 12.5}],
            validator_scores={"json": 9.0},
            confidence=8.5,
            offline=True,
        ),
    )
    with sessions() as s:
        row = q.get_audit_by_request_id(s, "req-1")
    assert row is not None
    assert row.created_at == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
    assert row.created_at.tzinfo is UTC
    assert row.attempts[0]["provider"] == "ollama"
    assert row.steps[0]["score"] == 8.5
    assert row.validator_scores == {"json": 9.0}
    assert row.offline is True
    assert row.prompt is None  # approved row under review_only
    assert len(row.prompt_hash) == 64


def test_write_is_idempotent_by_request_id(engine: Engine, sessions: sessionmaker[Session]) -> None:
    write(engine, rec(1), rec(2, status="pending_review"))
    write(engine, rec(1), rec(2, status="pending_review"), rec(3))
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog)) == 3
        assert s.scalar(select(func.count()).select_from(ReviewItem)) == 1


def test_a_bad_row_goes_to_dead_letters_without_blocking_its_batch(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    good = prepare_row(rec(1), "review_only")
    bad = prepare_row(rec(2), "review_only")
    bad["caller"] = None  # NOT NULL violation
    dead = AuditWriter(engine).write([good, bad])
    assert [d["row"]["request_id"] for d in dead] == ["req-2"]
    assert "IntegrityError" in dead[0]["reason"]
    with sessions() as s:
        assert q.get_audit_by_request_id(s, "req-1") is not None


# -- audit queries ------------------------------------------------------------------------------


def test_list_audit_filters_and_keyset_pages(engine: Engine, sessions: sessionmaker[Session]) -> None:
    write(engine, *(rec(i) for i in range(25)), rec(99, status="error", caller="agent-c"))
    with sessions() as s:
        seen: list[str] = []
        cursor = None
        while True:
            page = q.list_audit(s, caller="agent-a", limit=5, cursor=cursor)
            seen += [r.request_id for r in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [f"req-{i}" for i in range(24, -1, -2)]  # newest first, no gaps/dupes

        window = q.list_audit(s, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=13), order="asc")
        assert [r.request_id for r in window.items] == ["req-10", "req-11", "req-12"]
        assert window.next_cursor is None

        assert [r.request_id for r in q.list_audit(s, status="error").items] == ["req-99"]
        assert {r.task_type for r in q.list_audit(s, task_type="chat", limit=100).items} == {"chat"}
        assert q.list_audit(s, tier="large").items == []

        one = q.get_audit_by_request_id(s, "req-3")
        assert one is not None
        same = q.get_audit(s, one.id)
        assert same is not None and same.request_id == "req-3"
        assert q.get_audit(s, 10**9) is None


# -- review queue -------------------------------------------------------------------------------


def test_review_lifecycle(engine: Engine, sessions: sessionmaker[Session]) -> None:
    write(
        engine,
        rec(1, status="pending_review", confidence=2.5, tier="fast", prompt="use sk-abcdefghijklmnop1234"),
        rec(2, status="pending_review", confidence=3.0, tier="medium"),
        rec(3, status="warning"),
        policy="review_only",
    )
    with sessions() as s:
        items = q.list_review_items(s, state="pending").items
        assert [i.request_id for i in items] == ["req-1", "req-2"]  # oldest first
        first = items[0]
        assert (first.tier, first.confidence, first.state) == ("fast", 2.5, "pending")
        audit = q.get_audit(s, first.audit_id)
        assert audit is not None and audit.prompt == "use [REDACTED:api_key]"  # content kept, redacted
        assert [i.request_id for i in q.list_review_items(s, tier="medium").items] == ["req-2"]

        count, oldest = q.pending_review_stats(s, now=T0 + timedelta(minutes=11))
        assert count == 2 and oldest == pytest.approx(600.0)

        approved = q.apply_verdict(s, first.id, "approve", reviewer="ana", score=8, notes="fine")
        assert (approved.state, approved.verdict, approved.reviewer, approved.score) == (
            "approved",
            "approve",
            "ana",
            8,
        )
        assert approved.updated_at >= approved.created_at
        with pytest.raises(q.NotPending):
            q.apply_verdict(s, first.id, "reject", reviewer="bo")

        with pytest.raises(q.InvalidInput):
            q.apply_verdict(s, items[1].id, "correct", reviewer="bo")  # no corrected_output
        corrected = q.apply_verdict(
            s, items[1].id, "correct", reviewer="bo", corrected_output="fixed; password=hunter22"
        )
        assert corrected.state == "corrected"
        assert corrected.corrected_output == "fixed; password=[REDACTED:secret]"

        with pytest.raises(q.NotFound):
            q.apply_verdict(s, 10**9, "approve", reviewer="ana")
        with pytest.raises(q.InvalidInput):
            q.apply_verdict(s, first.id, "maybe", reviewer="ana")  # type: ignore[arg-type]

        assert q.pending_review_stats(s) == (0, 0.0)
        assert [i.state for i in q.list_review_items(s).items] == ["approved", "corrected"]
        got = q.get_review_item(s, first.id)
        assert got is not None and got.notes == "fine"


def test_review_items_page(engine: Engine, sessions: sessionmaker[Session]) -> None:
    write(engine, *(rec(i, status="pending_review") for i in range(7)))
    with sessions() as s:
        page1 = q.list_review_items(s, state="pending", limit=3)
        page2 = q.list_review_items(s, state="pending", limit=3, cursor=page1.next_cursor)
        page3 = q.list_review_items(s, state="pending", limit=3, cursor=page2.next_cursor)
        ids = [i.request_id for p in (page1, page2, page3) for i in p.items]
        assert ids == [f"req-{i}" for i in range(7)]
        assert page3.next_cursor is None
        assert q.list_review_items(s, caller="agent-b", limit=50).items[0].request_id == "req-1"


# -- retention ----------------------------------------------------------------------------------


def test_retention_purges_in_batches_and_keeps_pending_reviews(engine: Engine, sessions: sessionmaker[Session]) -> None:
    now = T0 + timedelta(days=40)
    old = [rec(i, created_at=T0 + timedelta(seconds=i)) for i in range(12)]
    old += [rec(100, created_at=T0, status="pending_review"), rec(101, created_at=T0, status="pending_review")]
    new = [rec(200 + i, created_at=now - timedelta(days=1)) for i in range(3)]
    write(engine, *old, *new)
    with sessions() as s:
        resolved = q.list_review_items(s).items[1]
        q.apply_verdict(s, resolved.id, "reject", reviewer="ana")

    assert purge_older_than(engine, days=30, batch_size=5, now=now) == 13  # 12 + the resolved one

    with sessions() as s:
        left = {r.request_id for r in q.list_audit(s, limit=100).items}
        assert left == {"req-100", "req-200", "req-201", "req-202"}
        assert [i.request_id for i in q.list_review_items(s).items] == ["req-100"]
    assert purge_older_than(engine, days=30, now=now) == 0


# -- API keys -----------------------------------------------------------------------------------


def test_api_keys(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        key, plaintext = q.create_api_key(s, "ci-agent", "agent")
        assert plaintext.startswith("gwk_") and len(plaintext) > 40
        assert key.prefix == plaintext[:8]
        assert key.key_hash == q.hash_api_key(plaintext) and plaintext not in key.key_hash
        q.create_api_key(s, "ops", "admin")
        with pytest.raises(q.Conflict):
            q.create_api_key(s, "ci-agent", "agent")
        with pytest.raises(q.InvalidInput):
            q.create_api_key(s, "x", "root")  # type: ignore[arg-type]

        found = q.lookup_api_key(s, q.hash_api_key(plaintext))
        assert found is not None and (found.name, found.role) == ("ci-agent", "agent")
        assert q.lookup_api_key(s, q.hash_api_key("gwk_wrong")) is None

        revoked = q.revoke_api_key(s, "ci-agent")
        assert revoked.revoked_at is not None
        assert q.lookup_api_key(s, q.hash_api_key(plaintext)) is None
        assert [k.name for k in q.list_api_keys(s)] == ["ci-agent", "ops"]
        assert [k.name for k in q.list_api_keys(s, include_revoked=False)] == ["ops"]
        with pytest.raises(q.NotFound):
            q.revoke_api_key(s, "nobody")


# -- learned state ------------------------------------------------------------------------------


def test_learned_state_versions_and_rollback(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        assert q.get_active_learned_state(s) is None
        v1 = q.save_learned_state(s, {"weights": {"json": 1.0}}, {"why": "init"}, source="seed")
        v2 = q.save_learned_state(s, {"weights": {"json": 0.7}}, {"why": "6h cycle"}, source="learner")
        v3 = q.save_learned_state(s, {"weights": {"json": 0.1}}, source="learner", activate=False)
        assert (v1.version, v2.version, v3.version) == (1, 2, 3)
        active = q.get_active_learned_state(s)
        assert active is not None and active.version == 2
        assert active.state == {"weights": {"json": 0.7}}

        q.activate_learned_state(s, 1)  # rollback
        active = q.get_active_learned_state(s)
        assert active is not None and active.version == 1
        history = q.list_learned_states(s)
        assert [(h.version, h.active) for h in history] == [(3, False), (2, False), (1, True)]
        with pytest.raises(q.NotFound):
            q.activate_learned_state(s, 42)


# -- engines ------------------------------------------------------------------------------------


def test_sqlite_engine_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "new" / "dir" / "gateway.db"), sqlite_busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_postgres_engine_notices_a_dead_server_fast() -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxy.cut()  # nothing listens on this port any more
        engine = make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/test", connect_timeout_s=1)
        started = time.monotonic()
        with pytest.raises(OperationalError), engine.connect():
            pass
        assert time.monotonic() - started < 2
        engine.dispose()
