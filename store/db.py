"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL (production).

- `make_engine(url)`: SQLite gets WAL mode, a busy timeout, `synchronous=NORMAL`, foreign keys
  on and `check_same_thread=False` (the sink writes from worker threads); its parent directory is
  created. PostgreSQL gets `pool_pre_ping`, a short libpq `connect_timeout` and TCP keepalives /
  `tcp_user_timeout`, so an outage is noticed in seconds rather than hanging a worker thread.
- `session_factory(engine)`: sessions with `expire_on_commit=False`, so rows returned by
  `store.queries` stay readable after their session closes.
- `migrate(url_or_engine)`: Alembic upgrade to head with a programmatic config (no alembic.ini).
  On PostgreSQL a transaction-scoped advisory lock serialises gateways starting together.
  New revisions: `alembic.command.revision(alembic_config(url), "message", autogenerate=True)`.

The engine is blocking (the async drivers aiosqlite/asyncpg are not dependencies): async code
runs database work in worker threads (`asyncio.to_thread` or the sink's executors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_DATA_DIR = Path("data")
_MIGRATION_LOCK_KEY = 0x6C6C6D67_6174  # arbitrary, constant: "llmgat"


def sqlite_url(path: str | Path = DEFAULT_DATA_DIR / "gateway.db") -> str:
    """The SQLAlchemy URL of the SQLite file at `path` (the embedded default: data/gateway.db)."""
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(
    url: str,
    *,
    connect_timeout_s: int = 3,
    sqlite_busy_timeout_ms: int = 5000,
    pool_size: int = 5,
    echo: bool = False,
) -> Engine:
    """An engine for `url` (`sqlite:///...` or `postgresql+psycopg2://...`), configured as above."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": sqlite_busy_timeout_ms / 1000},
            "echo": echo,
        }
        if in_memory:
            kwargs["poolclass"] = StaticPool
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine

    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "psycopg2":
        connect_args = {
            "connect_timeout": max(1, int(connect_timeout_s)),
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": max(1000, int(connect_timeout_s) * 1000 * 3),
        }
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout_s,
        pool_recycle=1800,
        connect_args=connect_args,
        echo=echo,
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Any:
    """A programmatic Alembic `Config` for `store/migrations` (nothing read from alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` (default: the newest). Safe to run on every start."""
    from alembic import command

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        config = alembic_config()
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()
