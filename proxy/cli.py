"""`llm-gateway`: serve, config check, db migrate, verify, keys, learn.

Subcommands import what they need lazily, so `config check` answers in well under a second
instead of paying litellm's import.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from core.errors import scrub

from . import keys_cli
from .learn_cli import register as register_learn
from .logs import setup_logging
from .settings import CONFIG_ENV, DEFAULT_CONFIG, ConfigError, load_settings, resolve_deployments

# How `serve --workers N` hands `--drain-delay` to its workers (like CONFIG_ENV for the config).
DRAIN_DELAY_ENV = "LLM_GATEWAY_DRAIN_DELAY"


def app_factory():  # type: ignore[no-untyped-def]
    """uvicorn `--factory` entry for multi-worker serving: each worker builds its own app."""
    from .app import create_app
    from .shutdown import DEFAULT_DRAIN_DELAY_S, adopt_running_server

    settings = load_settings(os.environ.get(CONFIG_ENV) or None)
    setup_logging(settings.log_level)
    app = create_app(settings)
    # Graceful shutdown in this worker: drain first on SIGTERM (proxy/shutdown.py).
    adopt_running_server(app.state.drain, float(os.environ.get(DRAIN_DELAY_ENV) or DEFAULT_DRAIN_DELAY_S))
    return app


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    log = logging.getLogger("gateway")
    deployments, skipped = resolve_deployments(settings)
    log.info("config %s (version %s): %d deployments usable", args.config or DEFAULT_CONFIG, settings.version,
             len(deployments))
    for line in skipped:
        log.warning("deployment left out: %s", line)
    if settings.auth.mode == "open":
        log.warning("AUTH IS OPEN (auth.mode=open): any caller is accepted without a key")
    if settings.local_models:
        if args.workers > 1:
            print("llm-gateway: gateway.local_models needs --workers 1 (each worker would start its own model "
                  "server); run the model on its own instead: docs/local-models.md", file=sys.stderr)
            return 2
        from .local_models import LocalModelError, resolve_gguf, server_available

        try:
            if not server_available():
                raise LocalModelError("llama.cpp's server is not installed: pip install 'llm-gateway[local]'")
            for model in settings.local_models:
                log.info("local model %s: %s for %s (starting with the gateway)", model.name, resolve_gguf(model),
                         ", ".join(model.groups))
        except LocalModelError as exc:
            print(f"llm-gateway: {exc}", file=sys.stderr)
            return 2
    log.info("serving on http://%s:%d/v1 with %d worker(s)", args.host, args.port, args.workers)
    # Graceful shutdown (proxy/shutdown.py): on SIGTERM readiness goes off at once, the listener closes
    # after --drain-delay, in-flight requests get --shutdown-grace seconds, open streams end with a
    # `shutting_down` error event just before that bound, then the audit queue is flushed.
    if args.workers > 1:
        os.environ[CONFIG_ENV] = str(args.config or DEFAULT_CONFIG)
        os.environ[DRAIN_DELAY_ENV] = str(args.drain_delay)
        uvicorn.run("proxy.cli:app_factory", factory=True, host=args.host, port=args.port, workers=args.workers,
                    log_level="warning", timeout_graceful_shutdown=args.shutdown_grace)
        return 0
    from .app import create_app
    from .shutdown import serve

    return serve(create_app(settings), host=args.host, port=args.port, drain_delay_s=args.drain_delay,
                 grace_s=args.shutdown_grace)


def _config_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    deployments, skipped = resolve_deployments(settings)
    print(f"{args.file}: OK (config version {settings.version})")
    print(f"  tiers: {', '.join(settings.tiers)}; default tier: {settings.default_tier}")
    print(f"  deployments usable now: {len(deployments)} of {len(settings.model_list)}")
    for line in skipped:
        print(f"  left out until its key is set: {line}")
    print(f"  auth: {settings.auth.mode}; callers: {len(settings.callers)}")
    if settings.local_models:
        from .local_models import LocalModelError, resolve_gguf

        for model in settings.local_models:
            try:
                where = str(resolve_gguf(model))
            except LocalModelError as exc:
                where = f"NOT USABLE: {exc}"
            print(f"  local model {model.name} for {', '.join(model.groups)}: {where}")
    return 0


def _db_migrate(args: argparse.Namespace) -> int:
    """Deploys run this before switching releases: a bad config or an unreachable database stops them."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"llm-gateway: {exc}", file=sys.stderr)
        return 2
    from pathlib import Path

    from store.db import make_engine, migrate, sqlite_url

    # As services.database_url (not imported: that module pulls in litellm, seconds of import).
    url = settings.database_url or sqlite_url(Path(settings.data_dir) / "gateway.db")
    engine = make_engine(url)
    try:
        migrate(engine)
    except Exception as exc:
        print(f"llm-gateway: migrating {engine.url.render_as_string(hide_password=True)} failed: "
              f"{type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"database migrated: {engine.url.render_as_string(hide_password=True)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway", description="OpenAI-compatible LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=None, help=f"config file (default {DEFAULT_CONFIG})")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--drain-delay", type=float, default=2.0, metavar="SECONDS",
                       help="on SIGTERM: seconds readiness is off (503) before the listener closes (default 2)")
    serve.add_argument("--shutdown-grace", type=int, default=20, metavar="SECONDS",
                       help="then: seconds in-flight requests get to finish; open streams end just before (default 20)")
    serve.set_defaults(func=_serve)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file without starting")
    check.add_argument("file", nargs="?", default=str(DEFAULT_CONFIG))
    check.set_defaults(func=_config_check)

    keys_cli.register(sub)
    register_learn(sub)

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    migrate = db_sub.add_parser("migrate", help="migrate the config's database to the latest schema (deploys)")
    migrate.add_argument("--config", default=None, help=f"config file naming the database (default {DEFAULT_CONFIG})")
    migrate.set_defaults(func=_db_migrate)

    from .verify import register as register_verify

    register_verify(sub)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
