"""One worker acts at a time: the PostgreSQL advisory lock, the Redis lock and the file lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from learning.locks import FileLock, Lock, PostgresLock, RedisLock, held, lock_factory
from learning.runner import LearningContext, run_cycle
from store.db import make_engine, migrate
from tests.support.services import postgres_reachable, postgres_schema

REDIS_DB = 14  # this module's own database: flushed before and after


def race(make: Callable[[], Lock]) -> list[bool]:
    """Two locks try at the same instant; returns who got it (both released afterwards)."""
    locks = [make(), make()]
    barrier = threading.Barrier(2)
    got: list[bool] = [False, False]

    def attempt(i: int) -> None:
        barrier.wait()
        got[i] = locks[i].acquire()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for lock, acquired in zip(locks, got, strict=True):
        if acquired:
            lock.release()
    return got


def check_exclusive(make: Callable[[], Lock]) -> None:
    assert sorted(race(make)) == [False, True]
    first, second = make(), make()
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()  # released: the next one gets it
    second.release()
    with held(make()) as one, held(make()) as two:
        assert one and not two


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not postgres_reachable():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    with postgres_schema(prefix="test_learning") as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis on 127.0.0.1:6379 is not reachable")
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()
    client.close()


@pytest.mark.postgres
def test_postgres_advisory_lock_lets_one_worker_in(postgres_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_url)
    try:
        make = lock_factory(engine, "redis://unused", tmp_path)
        assert isinstance(make(), PostgresLock)  # PostgreSQL wins over Redis
        check_exclusive(make)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_worker_that_cannot_get_the_lock_skips_the_run(postgres_url: str, settings: object, tmp_path: Path) -> None:
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    try:
        context = LearningContext.from_settings(settings, engine=engine, overlay_path=tmp_path / "learned.yaml")
        other = PostgresLock(engine)
        assert other.acquire()
        report = run_cycle(context, "assignments")
        assert report.status == "skipped" and "postgres advisory lock" in report.message
        other.release()
        assert run_cycle(context, "assignments").status in ("saved", "unchanged")
    finally:
        engine.dispose()


@pytest.mark.redis
def test_redis_lock_lets_one_worker_in(redis_url: str) -> None:
    clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
    turn = iter(range(1000))
    check_exclusive(lambda: RedisLock(clients[next(turn) % 2], ttl_s=30))
    for client in clients:
        client.close()


@pytest.mark.redis
def test_redis_lock_never_deletes_the_next_holders_lock(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first = RedisLock(client, ttl_s=0.1)
    assert first.acquire()
    time.sleep(0.2)  # expired: a worker that took too long
    second = RedisLock(client, ttl_s=30)
    assert second.acquire()
    first.release()  # compare-and-delete: not its token any more
    assert not RedisLock(client, ttl_s=30).acquire()
    second.release()
    assert RedisLock(client, ttl_s=30).acquire()
    client.close()


def test_file_lock_lets_one_worker_in(tmp_path: Path) -> None:
    check_exclusive(lambda: FileLock(tmp_path / "learning.lock"))


def test_sqlite_without_redis_uses_the_file_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        assert isinstance(lock_factory(engine, None, tmp_path)(), FileLock)
        assert isinstance(lock_factory(engine, "redis://127.0.0.1:6379/14", tmp_path)(), RedisLock)
    finally:
        engine.dispose()
