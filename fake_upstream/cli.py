"""``scripts/fake-upstream`` / ``python -m fake_upstream`` (from a checkout): serve the fake in the foreground.

For the bench and for poking at by hand; tests use :class:`fake_upstream.server.FakeUpstream`.
"""

from __future__ import annotations

import argparse

import uvicorn

from fake_upstream.app import create_app
from fake_upstream.behaviour import load_script


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fake-upstream",
        description="Fake OpenAI/Ollama/Anthropic upstream, scriptable behaviour (admin API: /_fake).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port (default: 9100)")
    parser.add_argument("--script", metavar="FILE", help="behaviour script, YAML or JSON")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="latency for every behaviour that does not set its own"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    script = load_script(args.script) if args.script else None
    app = create_app(script, default_latency_ms=args.latency_ms)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        lifespan="off",
        log_level=args.log_level,
        access_log=False,
    )
    return 0
