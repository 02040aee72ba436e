"""`llm-gateway keys create|list|revoke`: API keys stored in the gateway's database.

    llm-gateway keys create ci-bot --role agent|reviewer|admin [--config FILE] [--json]
    llm-gateway keys list [--config FILE] [--json]
    llm-gateway keys revoke ci-bot [--config FILE]

The database is the one the config names (`database_url`, else SQLite in `data_dir`); it is
migrated first, so the commands work on a fresh machine before the gateway ever ran. `create`
prints the plaintext key once: only its sha256 and an 8-character prefix are stored. A revoked
key stops working within the gateways' key cache time (30 s) without a restart.

Exit status: 0 done, 1 refused (name taken, no such key, database unreachable), 2 bad config.
Heavy imports (SQLAlchemy, Alembic) happen only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ROLES = ("agent", "reviewer", "admin")  # reviewer: the console and the review queue only


def register(subparsers: Any) -> None:
    """Add the `keys` command group to the CLI's subparsers."""
    keys = subparsers.add_parser("keys", help="manage API keys stored in the database")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)

    def config_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", default=None, help="config file naming the database")

    create = keys_sub.add_parser("create", help="create a key; prints it once")
    create.add_argument("name", help="the caller name the key authenticates as (unique)")
    create.add_argument("--role", choices=ROLES, default="agent")
    create.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    config_arg(create)
    create.set_defaults(func=_create)

    listing = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    config_arg(listing)
    listing.set_defaults(func=_list)

    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    config_arg(revoke)
    revoke.set_defaults(func=_revoke)


def _fail(message: str, code: int = 1) -> int:
    print(f"llm-gateway keys: {message}", file=sys.stderr)
    return code


def _with_session(args: argparse.Namespace, work: Callable[[Session], int]) -> int:
    """Open the configured database (migrated), run `work(session)`; errors become exit codes."""
    from sqlalchemy import exc as sa_exc

    from store import queries as q
    from store.db import make_engine, migrate, session_factory

    from .services import database_url
    from .settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    engine = make_engine(database_url(settings))
    try:
        migrate(engine)
        with session_factory(engine)() as session:
            return work(session)
    except (q.Conflict, q.NotFound, q.InvalidInput) as exc:
        return _fail(str(exc))
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        return _fail(f"the database is unavailable ({type(exc).__name__}): {engine.url.render_as_string()}")
    finally:
        engine.dispose()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def _create(args: argparse.Namespace) -> int:
    from store import queries as q

    def work(session: Session) -> int:
        key, plaintext = q.create_api_key(session, args.name, args.role)
        if args.json:
            print(json.dumps({"name": key.name, "role": key.role, "prefix": key.prefix, "key": plaintext,
                              "created": _when(key.created_at)}))
            return 0
        print(f"created key {key.name!r}: role {key.role}, prefix {key.prefix}")
        print(plaintext)
        print("This is the only time the key is shown; store it now.", file=sys.stderr)
        return 0

    return _with_session(args, work)


def _list(args: argparse.Namespace) -> int:
    from store import queries as q

    def work(session: Session) -> int:
        rows = [
            {"name": k.name, "role": k.role, "prefix": k.prefix, "created": _when(k.created_at),
             "revoked": _when(k.revoked_at) or None}
            for k in q.list_api_keys(session)
        ]
        if args.json:
            print(json.dumps(rows))
            return 0
        if not rows:
            print("no keys")
            return 0
        header = ("NAME", "ROLE", "PREFIX", "CREATED", "REVOKED")
        table = [header] + [(r["name"], r["role"], r["prefix"], r["created"], r["revoked"] or "-") for r in rows]
        widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
        for line in table:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        return 0

    return _with_session(args, work)


def _revoke(args: argparse.Namespace) -> int:
    from store import queries as q

    def work(session: Session) -> int:
        key = q.revoke_api_key(session, args.name)
        print(f"revoked key {key.name!r} (prefix {key.prefix}) at {_when(key.revoked_at)}; "
              "running gateways refuse it within 30 s (their key cache)")
        return 0

    return _with_session(args, work)
