"""The audit sink end to end: batching, idempotency, stop(), queue overflow, and outages.

Runs on SQLite and on the real PostgreSQL. Outages are real: on PostgreSQL the sink talks to the
server through a TCP proxy that the test cuts (connection refused / reset) or stalls (a hung
server); on SQLite another connection holds the write lock past the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from core.records import AuditRecord
from store import queries as q
from store.audit_sink import AuditSink
from store.db import make_engine, migrate, session_factory, sqlite_url
from store.models import AuditLog, ReviewItem
from store.spool import Spool
from tests.support.services import TcpProxy, postgres_reachable, postgres_schema, with_address

SECRET = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
FAST: dict[str, Any] = dict(flush_interval_s=0.02, replay_interval_s=0.05, write_timeout_s=2.0)


def _migrated_sqlite(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "data" / "gateway.db")
    migrate(url)
    return url


@contextlib.contextmanager
def _migrated_postgres() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    with postgres_schema() as url:
        migrate(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield _migrated_sqlite(tmp_path)
    else:
        with _migrated_postgres() as url:
            yield url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return _migrated_sqlite(tmp_path)


@pytest.fixture
def postgres_db() -> Iterator[str]:
    with _migrated_postgres() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "data")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def rec(i: int, **kw: Any) -> AuditRecord:
    base: dict[str, Any] = dict(
        request_id=f"req-{i:05d}",
        caller="agent",
        route="/v1/chat/completions",
        task_type="code",
        tier="fast",
        status="approved",
        prompt=f"prompt {i} {SECRET}",
        output=f"output {i}",
    )
    base.update(kw)
    return AuditRecord(**base)


def count(engine: Engine, model: type[AuditLog] | type[ReviewItem] = AuditLog) -> int:
    with session_factory(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def request_ids(engine: Engine) -> list[str]:
    with session_factory(engine)() as s:
        return sorted(s.scalars(select(AuditLog.request_id)))


# -- normal operation ---------------------------------------------------------------------------


def test_records_are_written_in_batches_and_stop_flushes(engine: Engine, spool: Spool) -> None:
    async def scenario() -> None:
        sink = AuditSink(engine, spool, batch_size=100, flush_interval_s=5.0, replay_interval_s=5.0)
        await sink.start()
        for i in range(250):
            sink.submit(rec(i))
        assert sink.queue_depth == 250  # submit never touches the database
        await eventually(lambda: sink.stats.batches >= 2)  # two full batches without waiting 5 s
        await sink.stop()  # flushes the remaining 50 at once
        assert sink.stats.batches == 3 and sink.stats.written == 250
        assert (sink.queue_depth, sink.spool_depth) == (0, 0)

    run(scenario())
    assert count(engine) == 250


def test_a_partial_batch_is_flushed_after_the_interval(engine: Engine, spool: Spool) -> None:
    async def scenario() -> None:
        sink = AuditSink(engine, spool, batch_size=100, **FAST)
        await sink.start()
        for i in range(3):
            sink.submit(rec(i))
        await eventually(lambda: count(engine) == 3)
        assert sink.stats.batches == 1
        await sink.stop()

    run(scenario())


def test_duplicates_are_stored_once_and_pending_review_gets_a_review_item(engine: Engine, spool: Spool) -> None:
    async def scenario() -> None:
        sink = AuditSink(engine, spool, **FAST)
        await sink.start()
        sink.submit(rec(1))
        sink.submit(rec(2, status="pending_review", confidence=3.1))
        await eventually(lambda: count(engine) == 2)
        sink.submit(rec(1))  # a retried upload of the same call
        sink.submit(rec(2, status="pending_review", confidence=3.1))
        await sink.stop()

    run(scenario())
    assert count(engine) == 2
    assert count(engine, ReviewItem) == 1
    with session_factory(engine)() as s:
        item = q.list_review_items(s, state="pending").items[0]
        audit = q.get_audit(s, item.audit_id)
        assert item.request_id == "req-00002" and item.confidence == 3.1
        assert audit is not None and audit.output == "output 2"
        assert audit.prompt == "prompt 2 [REDACTED:api_key]"
        approved = q.get_audit_by_request_id(s, "req-00001")
        assert approved is not None and approved.prompt is None  # review_only policy


def test_bad_records_go_to_dead_letters_and_do_not_block_the_rest(engine: Engine, spool: Spool) -> None:
    async def scenario() -> None:
        sink = AuditSink(engine, spool, **FAST)
        await sink.start()
        sink.submit(rec(1))
        sink.submit(rec(2, attempts=[42]))  # not a mapping: cannot become a row
        sink.submit(rec(3, tokens_in="many"))  # not a number
        sink.submit(rec(4))
        await sink.stop()
        assert sink.stats.dead == 2

    run(scenario())
    assert request_ids(engine) == ["req-00001", "req-00004"]
    dead = spool.dead_path.read_text()
    assert "req-00002" in dead and "req-00003" in dead
    assert SECRET not in dead


def test_unknown_content_policy_is_rejected(engine: Engine, spool: Spool) -> None:
    with pytest.raises(ValueError, match="store_content"):
        AuditSink(engine, spool, store_content="everything")  # type: ignore[arg-type]


def test_submit_before_start_and_stop_without_start_still_writes(engine: Engine, spool: Spool) -> None:
    async def scenario() -> None:
        sink = AuditSink(engine, spool, **FAST)
        sink.submit(rec(1))
        await sink.stop()
        sink.submit(rec(2))  # after stop: spooled synchronously, never dropped
        assert sink.spool_depth == 1

    run(scenario())
    assert request_ids(engine) == ["req-00001"]
    assert spool.depth == 1


def test_full_queue_spills_to_the_spool_and_everything_lands_once(engine: Engine, spool: Spool) -> None:
    async def scenario() -> None:
        sink = AuditSink(engine, spool, max_queue=3, **FAST)
        for i in range(10):
            sink.submit(rec(i))
        assert (sink.queue_depth, sink.spool_depth, sink.stats.overflowed) == (3, 7, 7)
        assert SECRET not in spool.path.read_text()  # the spool holds prepared (redacted) rows
        await sink.start()
        await eventually(lambda: sink.spool_depth == 0 and count(engine) == 10)
        await sink.stop()

    run(scenario())
    assert request_ids(engine) == [f"req-{i:05d}" for i in range(10)]


def test_leftover_spool_from_a_previous_run_is_replayed_on_start(engine: Engine, spool: Spool, tmp_path: Path) -> None:
    async def first_run() -> None:  # the database is unreachable for this whole run
        dead = make_engine(sqlite_url(tmp_path / "elsewhere" / "missing.db"))
        sink = AuditSink(dead, Spool(spool.directory), **FAST)
        await sink.start()
        for i in range(5):
            sink.submit(rec(i, status="pending_review"))
        await sink.stop()
        assert sink.spool_depth == 5 and not sink.db_ok

    async def second_run() -> None:
        sink = AuditSink(engine, Spool(spool.directory), **FAST)
        await sink.start()
        await eventually(lambda: sink.spool_depth == 0)
        assert sink.stats.replayed == 5
        await sink.stop()

    run(first_run())
    run(second_run())
    assert count(engine) == 5 and count(engine, ReviewItem) == 5


# -- outages ------------------------------------------------------------------------------------


async def _outage_scenario(
    sink: AuditSink, engine: Engine, cut: Callable[[], None], restore: Callable[[], None]
) -> None:
    await sink.start()
    for i in range(20):
        sink.submit(rec(i))
    await eventually(lambda: count(engine) == 20)
    assert sink.db_ok

    cut()
    for i in range(20, 60):
        sink.submit(rec(i, status="pending_review" if i % 10 == 0 else "approved"))
    await eventually(lambda: sink.spool_depth == 40, timeout=10)
    assert not sink.db_ok
    assert sink.queue_depth == 0  # the gateway's memory is not holding them
    assert SECRET not in sink._spool.path.read_text()

    assert sink.stats.spooled == 40 and sink.stats.db_failures >= 1

    restore()
    await eventually(lambda: sink.spool_depth == 0 and sink.db_ok, timeout=10)
    assert sink.stats.replayed == 40
    for i in range(60, 70):
        sink.submit(rec(i))
    await sink.stop()


def test_sqlite_locked_database_spools_and_replays_exactly_once(sqlite_db: str, spool: Spool) -> None:
    db_url = sqlite_db
    engine = make_engine(db_url, sqlite_busy_timeout_ms=50)
    blocker = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)

    def cut() -> None:
        blocker.execute("BEGIN EXCLUSIVE")

    def restore() -> None:
        blocker.execute("COMMIT")

    try:
        run(_outage_scenario(AuditSink(engine, spool, **FAST), engine, cut, restore))
        assert request_ids(engine) == [f"req-{i:05d}" for i in range(70)]
        assert count(engine, ReviewItem) == 4
    finally:
        blocker.close()
        engine.dispose()


@pytest.mark.postgres
def test_postgres_outage_behind_a_cut_proxy_spools_and_replays_exactly_once(postgres_db: str, spool: Spool) -> None:
    db_url = postgres_db
    url = make_url(db_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        engine = make_engine(with_address(db_url, "127.0.0.1", proxy.port), connect_timeout_s=1)
        try:
            run(_outage_scenario(AuditSink(engine, spool, **FAST), engine, proxy.cut, proxy.restore))
            assert request_ids(engine) == [f"req-{i:05d}" for i in range(70)]
            assert count(engine, ReviewItem) == 4
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_postgres_hanging_server_times_out_to_the_spool(postgres_db: str, spool: Spool) -> None:
    db_url = postgres_db
    url = make_url(db_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        engine = make_engine(with_address(db_url, "127.0.0.1", proxy.port), connect_timeout_s=1)

        async def scenario() -> None:
            sink = AuditSink(engine, spool, flush_interval_s=0.02, replay_interval_s=0.05, write_timeout_s=0.3)
            await sink.start()
            sink.submit(rec(0))
            await eventually(lambda: count(engine) == 1)
            proxy.stall()
            started = time.monotonic()
            for i in range(1, 11):
                sink.submit(rec(i))
            await eventually(lambda: sink.spool_depth == 10)
            assert time.monotonic() - started < 3  # bounded by write_timeout, not by the server
            proxy.restore()
            await eventually(lambda: sink.spool_depth == 0 and sink.db_ok, timeout=10)
            await sink.stop()

        try:
            run(scenario())
            # the timed-out write may also have committed late: still exactly once
            assert request_ids(engine) == [f"req-{i:05d}" for i in range(11)]
        finally:
            engine.dispose()


def test_stop_during_an_outage_spools_the_queue(sqlite_db: str, spool: Spool) -> None:
    db_url = sqlite_db
    engine = make_engine(db_url, sqlite_busy_timeout_ms=50)
    blocker = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)

    async def scenario() -> None:
        sink = AuditSink(engine, spool, batch_size=10, flush_interval_s=5.0, replay_interval_s=5.0)
        await sink.start()
        blocker.execute("BEGIN EXCLUSIVE")
        for i in range(35):
            sink.submit(rec(i, created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        await sink.stop()
        assert (sink.queue_depth, sink.spool_depth) == (0, 35)

    try:
        run(scenario())
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert count(engine) == 0
    run(_replay_only(engine, spool))
    assert count(engine) == 35
    engine.dispose()


async def _replay_only(engine: Engine, spool: Spool) -> None:
    sink = AuditSink(engine, Spool(spool.directory), **FAST)
    await sink.start()
    await eventually(lambda: sink.spool_depth == 0)
    await sink.stop()
