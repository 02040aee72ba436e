"""`llm-gateway learn`: the learning worker and its tools.

    llm-gateway learn [--config FILE]                         run the worker until stopped
    llm-gateway learn --once [--cycle C] [--dry-run]          run one cycle (or all three) now, print why
    llm-gateway learn history [--limit N] [--json]            versions: time, source, active, summary
    llm-gateway learn rollback VERSION                        make an older version active again

`register(subparsers)` adds the `learn` command to the main parser (proxy/cli.py). It lives with
the other command-line front ends so the `learning` package never imports the gateway.
Exit codes: 0 done, 1 failed or rejected, 2 bad configuration, 3 another worker held the lock (nothing was done).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import Any

from learning.cycles import CYCLES


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Sub-subcommands use SUPPRESS so they do not overwrite a value given before them.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", default=default, help="config file (default config/litellm.yaml)")


def register(subparsers: Any) -> None:
    learn = subparsers.add_parser("learn", help="run the learning worker, or one cycle, history, rollback",
                                  description=__doc__.split("\n\n")[0] if __doc__ else None)
    _add_common(learn, top=True)
    learn.add_argument("--once", action="store_true", help="run one cycle now (all three without --cycle)")
    learn.add_argument("--cycle", choices=CYCLES, help="the cycle --once runs")
    learn.add_argument("--dry-run", action="store_true", help="with --once: show what would change, save nothing")
    learn.add_argument("--overlay", default=None, help="where to render the overlay (default config/learned.yaml)")
    learn.add_argument("--run-at-start", action="store_true", help="worker: run every cycle once at start")
    learn.set_defaults(func=_learn)
    sub = learn.add_subparsers(dest="learn_command")
    history = sub.add_parser("history", help="list learned-state versions")
    _add_common(history, top=False)
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.set_defaults(func=_history)
    rollback = sub.add_parser("rollback", help="make an older version active")
    _add_common(rollback, top=False)
    rollback.add_argument("version", type=int)
    rollback.add_argument("--overlay", default=argparse.SUPPRESS)
    rollback.set_defaults(func=_rollback)


def _settings(args: argparse.Namespace) -> Any:
    from proxy.settings import ConfigError, load_settings

    try:
        return load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"llm-gateway learn: {exc}", file=sys.stderr)
        return None


def _context(args: argparse.Namespace) -> Any:
    from learning.runner import LearningContext
    from store.db import migrate

    settings = _settings(args)
    if settings is None:
        return None
    args.log_level = settings.log_level
    context = LearningContext.from_settings(settings, overlay_path=getattr(args, "overlay", None))
    migrate(context.engine)
    return context


def _learn(args: argparse.Namespace) -> int:
    if (args.cycle or args.dry_run) and not args.once:
        print("llm-gateway learn: --cycle and --dry-run go with --once", file=sys.stderr)
        return 2
    context = _context(args)
    if context is None:
        return 2
    try:
        if args.once:
            return _once(context, [args.cycle] if args.cycle else list(CYCLES), args.dry_run)
        return _forever(context, args.run_at_start, args.log_level)
    finally:
        context.engine.dispose()


def _once(context: Any, cycles: list[str], dry_run: bool) -> int:
    from learning.runner import run_cycle

    code = 0
    for cycle in cycles:
        report = run_cycle(context, cycle, dry_run=dry_run)
        print(report.render())
        if report.status == "skipped":
            code = max(code, 3)
        elif report.status in ("rejected", "failed"):
            code = 1 if code != 3 else code
    return code


def _forever(context: Any, run_at_start: bool, log_level: str) -> int:
    from learning.worker import LearningWorker
    from proxy.logs import setup_logging

    setup_logging(log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await LearningWorker(context, run_at_start=run_at_start).serve(stop)

    asyncio.run(serve())
    return 0


def summary(reasons: dict[str, Any] | None, limit: int = 3) -> str:
    reasons = reasons or {}
    changes = reasons.get("changes") or []
    if reasons.get("summary"):
        return str(reasons["summary"])
    if not changes:
        notes = "; ".join(reasons.get("notes") or [])
        text = "no change" + (f": {notes}" if notes else "")
        return text if len(text) <= 110 else text[:107] + "..."
    parts = [f"{c.get('key')} {_fmt(c.get('old'))}->{_fmt(c.get('new'))}" for c in changes[:limit]]
    if len(changes) > limit:
        parts.append(f"+{len(changes) - limit} more")
    return "; ".join(parts) + (" (clamped)" if reasons.get("clamped") else "")


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _history(args: argparse.Namespace) -> int:
    from store.queries import list_learned_states

    context = _context(args)
    if context is None:
        return 2
    try:
        with context.session() as session:
            rows = list_learned_states(session, limit=args.limit)
    finally:
        context.engine.dispose()
    if args.json:
        print(json.dumps([{"version": r.version, "created_at": r.created_at.isoformat(), "source": r.source,
                           "active": r.active, "summary": summary(r.reasons), "reasons": r.reasons}
                          for r in rows], indent=2))
        return 0
    if not rows:
        print("no learned versions yet: the config's values are serving")
        return 0
    print(f"{'':1} {'version':>7}  {'created (UTC)':<19}  {'source':<22}  summary")
    for r in rows:
        mark = "*" if r.active else " "
        print(f"{mark} {r.version:>7}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.source:<22}  {summary(r.reasons)}")
    print("(* active)")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from learning.locks import held
    from learning.overlay import write_overlay
    from store.queries import NotFound, activate_learned_state, get_active_learned_state

    context = _context(args)
    if context is None:
        return 2
    try:
        deadline = time.monotonic() + 30
        while True:
            lock = context.new_lock()
            with held(lock) as acquired:
                if acquired:
                    with context.session() as session:
                        before = get_active_learned_state(session)
                        try:
                            row = activate_learned_state(session, args.version)
                        except NotFound as exc:
                            print(f"llm-gateway learn rollback: {exc}", file=sys.stderr)
                            return 1
                    break
            if time.monotonic() > deadline:
                print(f"llm-gateway learn rollback: a learning run holds the {lock.kind}; try again",
                      file=sys.stderr)
                return 3
            time.sleep(0.5)
        if context.overlay_path is not None:
            write_overlay(context.overlay_path, row.version, row.source, row.created_at, dict(row.state))
        was = before.version if before is not None else 0
        print(f"version {row.version} ({row.source}, {row.created_at:%Y-%m-%d %H:%M:%S}) is active (was {was}); "
              "gateways pick it up within seconds")
        return 0
    finally:
        context.engine.dispose()

