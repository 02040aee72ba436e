"""`llm-gateway verify URL`: post-deployment checks, one PASS/FAIL/SKIP line each.

    llm-gateway verify http://127.0.0.1:8080 --api-key KEY [--ollama-url http://127.0.0.1:11434]
                       [--ollama-model qwen2.5:7b] [--learning-max-age 86400] [--model auto] [--timeout 60]

    health       GET /health answers 200 with status "ok" (a degraded dependency fails it)
    completion   POST /v1/chat/completions (model `--model`, default auto) answers 200 with text
    fallback     the client SDK, pointed at an unreachable gateway, answers from the local model
                 (`llm_gateway_client` when importable; otherwise Ollama's /api/chat is called
                 directly, and the line says so); SKIP without --ollama-url / OLLAMA_URL
    metrics      GET /metrics carries llm_gateway_requests_total
    learning     the freshest llm_gateway_learning_cycle_last_success_timestamp_seconds is younger
                 than --learning-max-age seconds (the learning worker is alive); SKIP without it

Exit status 0 when nothing failed (SKIP is not a failure), 1 otherwise. The API key and the other
defaults come from the environment when not given: LLM_GATEWAY_API_KEY, OLLAMA_URL, OLLAMA_MODEL.
Nothing here imports litellm: it answers in about a second plus the model's time.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

Outcome = Literal["PASS", "FAIL", "SKIP"]
PROMPT = [{"role": "user", "content": "Reply with the single word OK."}]
_SAMPLE = re.compile(r'^llm_gateway_learning_cycle_last_success_timestamp_seconds\{(?P<labels>[^}]*)\}\s+(?P<v>\S+)')


@dataclass
class Check:
    name: str
    outcome: Outcome
    detail: str

    def line(self) -> str:
        return f"{self.outcome}  {self.name:<11} {self.detail}"


@dataclass
class Options:
    url: str
    api_key: str | None = None
    model: str = "auto"
    ollama_url: str | None = None
    ollama_model: str = "qwen2.5:7b"
    learning_max_age: float | None = None
    timeout: float = 60.0


def register(subparsers: Any) -> None:
    """Add `verify` to the CLI's subparsers."""
    env = os.environ
    verify = subparsers.add_parser("verify", help="post-deployment checks against a running gateway (PASS/FAIL)")
    verify.add_argument("url", help="the gateway's base URL, e.g. http://127.0.0.1:8080")
    verify.add_argument("--api-key", default=env.get("LLM_GATEWAY_API_KEY"),
                        help="a caller key for the test completion (default $LLM_GATEWAY_API_KEY)")
    verify.add_argument("--model", default="auto", help="model of the test completion (default auto)")
    verify.add_argument("--ollama-url", default=env.get("OLLAMA_URL"),
                        help="the local model the client falls back to (default $OLLAMA_URL; unset: SKIP)")
    verify.add_argument("--ollama-model", default=env.get("OLLAMA_MODEL") or "qwen2.5:7b",
                        help="the local model's name (default $OLLAMA_MODEL or qwen2.5:7b)")
    verify.add_argument("--learning-max-age", type=float, default=None, metavar="SECONDS",
                        help="fail when no learning cycle succeeded within this many seconds (unset: SKIP)")
    verify.add_argument("--timeout", type=float, default=60.0, help="seconds per check (default 60)")
    verify.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    options = Options(args.url.rstrip("/"), args.api_key, args.model, args.ollama_url, args.ollama_model,
                      args.learning_max_age, args.timeout)
    return run(options)


def run(options: Options, out: Callable[[str], None] | None = None) -> int:
    """Run every check, print one line each and a summary; 0 when none failed."""
    write = out or (lambda line: print(line, flush=True))
    checks: list[Check] = []
    with httpx.Client(base_url=options.url, timeout=options.timeout, follow_redirects=False) as http:
        for step in (check_health, check_completion, check_fallback, check_metrics, check_learning):
            try:
                check = step(http, options)
            except httpx.HTTPError as exc:
                check = Check(step.__name__.removeprefix("check_"), "FAIL", f"{type(exc).__name__}: {exc}")
            checks.append(check)
            write(check.line())
    failed = [c.name for c in checks if c.outcome == "FAIL"]
    passed = sum(c.outcome == "PASS" for c in checks)
    skipped = sum(c.outcome == "SKIP" for c in checks)
    if failed:
        write(f"verify {options.url}: FAILED ({', '.join(failed)}); {passed} passed, {skipped} skipped")
        return 1
    write(f"verify {options.url}: OK ({passed} passed, {skipped} skipped)")
    return 0


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"


def check_health(http: httpx.Client, options: Options) -> Check:
    started = time.perf_counter()
    response = http.get("/health")
    try:
        body = response.json()
    except ValueError:
        return Check("health", "FAIL", f"HTTP {response.status_code}, not JSON")
    status = body.get("status") if isinstance(body, dict) else None
    if response.status_code == 200 and status == "ok":
        return Check("health", "PASS", f"ok (version {body.get('version')}, config {body.get('config_version')}, "
                                       f"learned state {body.get('learned_state_version')}, {_ms(started)})")
    deps = body.get("dependencies", {}) if isinstance(body, dict) else {}
    down = [f"{name}={dep.get('state')}" for name, dep in deps.items()
            if isinstance(dep, dict) and dep.get("state") not in ("ok", "not_configured")]
    return Check("health", "FAIL", f"HTTP {response.status_code}, status {status!r}"
                                   + (f" ({', '.join(down)})" if down else ""))


def check_completion(http: httpx.Client, options: Options) -> Check:
    if not options.api_key:
        return Check("completion", "FAIL", "no API key: pass --api-key or set LLM_GATEWAY_API_KEY")
    started = time.perf_counter()
    response = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {options.api_key}"},
                         json={"model": options.model, "messages": PROMPT, "max_tokens": 16})
    if response.status_code != 200:
        try:
            error = response.json().get("error", {})
            reason = f"{error.get('code') or error.get('type')}: {error.get('message')}"
        except (ValueError, AttributeError):
            reason = response.text[:200]
        return Check("completion", "FAIL", f"HTTP {response.status_code} {reason}")
    body = response.json()
    try:
        text = body["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return Check("completion", "FAIL", "HTTP 200 but no choices[0].message in the answer")
    if not text.strip() and not body["choices"][0]["message"].get("tool_calls"):
        return Check("completion", "FAIL", "HTTP 200 but the answer is empty")
    tier = response.headers.get("x-gateway-tier", "?")
    status = response.headers.get("x-gateway-status", "?")
    return Check("completion", "PASS", f"{body.get('model')} (tier {tier}, {status}, {_ms(started)})")


def unreachable_url() -> str:
    """A loopback URL nothing listens on (a port just bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def check_fallback(http: httpx.Client, options: Options) -> Check:
    if not options.ollama_url:
        return Check("fallback", "SKIP", "no local model configured (--ollama-url / OLLAMA_URL)")
    started = time.perf_counter()
    try:
        from llm_gateway_client import ClientConfig, GatewayClientError, LLMGatewayClient
    except ImportError:
        return _fallback_direct(options, started)
    with tempfile.TemporaryDirectory(prefix="llm-gateway-verify-") as state_dir:
        config = ClientConfig(base_url=unreachable_url(), api_key=options.api_key or "verify",
                              ollama_url=options.ollama_url, ollama_model=options.ollama_model, fallback=True,
                              max_attempts=1, connect_timeout=2.0, probe_timeout=2.0, read_timeout=options.timeout,
                              state_dir=Path(state_dir))
        try:
            with LLMGatewayClient(config=config) as client:
                result = client.chat(PROMPT, max_tokens=16)
        except GatewayClientError as exc:
            return Check("fallback", "FAIL", f"client SDK: {type(exc).__name__}: {exc}")
    if result.mode != "fallback":
        return Check("fallback", "FAIL", f"client SDK answered in mode {result.mode!r}, expected 'fallback'")
    if not (result.content or "").strip():
        return Check("fallback", "FAIL", f"client SDK fell back to {result.model} but the answer is empty")
    return Check("fallback", "PASS", f"client SDK -> local model {result.model} ({_ms(started)})")


def _fallback_direct(options: Options, started: float) -> Check:
    """Without the client SDK installed: the local model itself answers (Ollama's /api/chat)."""
    assert options.ollama_url is not None
    response = httpx.post(options.ollama_url.rstrip("/") + "/api/chat", timeout=options.timeout,
                          json={"model": options.ollama_model, "messages": PROMPT, "stream": False})
    note = "llm_gateway_client not installed: Ollama /api/chat called directly"
    if response.status_code != 200:
        return Check("fallback", "FAIL", f"{note}: HTTP {response.status_code}")
    try:
        text = response.json()["message"]["content"]
    except (ValueError, KeyError, TypeError):
        return Check("fallback", "FAIL", f"{note}: no message.content in the answer")
    if not str(text).strip():
        return Check("fallback", "FAIL", f"{note}: the answer is empty")
    return Check("fallback", "PASS", f"{note}: {options.ollama_model} answered ({_ms(started)})")


def check_metrics(http: httpx.Client, options: Options) -> Check:
    response = http.get("/metrics")
    if response.status_code != 200:
        return Check("metrics", "FAIL", f"HTTP {response.status_code}")
    if "llm_gateway_requests_total" not in response.text:
        return Check("metrics", "FAIL", "llm_gateway_requests_total is missing from /metrics")
    series = sum(1 for line in response.text.splitlines() if line.startswith("llm_gateway_"))
    return Check("metrics", "PASS", f"llm_gateway_requests_total present ({series} llm_gateway_ samples)")


def learning_ages(metrics_text: str, now: float | None = None) -> dict[str, float]:
    """Seconds since each learning cycle's last success, from a /metrics text."""
    now = time.time() if now is None else now
    ages: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        cycle = re.search(r'cycle="([^"]*)"', match.group("labels"))
        try:
            value = float(match.group("v"))
        except ValueError:
            continue
        if cycle and value > 0:
            ages[cycle.group(1)] = max(0.0, now - value)
    return ages


def check_learning(http: httpx.Client, options: Options) -> Check:
    if options.learning_max_age is None:
        return Check("learning", "SKIP", "not checked (--learning-max-age SECONDS to check the learning worker)")
    response = http.get("/metrics")
    if response.status_code != 200:
        return Check("learning", "FAIL", f"/metrics: HTTP {response.status_code}")
    ages = learning_ages(response.text)
    if not ages:
        return Check("learning", "FAIL", "no learning cycle has reported a success yet "
                                         "(llm_gateway_learning_cycle_last_success_timestamp_seconds absent)")
    listing = ", ".join(f"{cycle} {age / 3600:.1f} h ago" for cycle, age in sorted(ages.items()))
    freshest = min(ages.values())
    if freshest > options.learning_max_age:
        return Check("learning", "FAIL", f"no cycle succeeded in the last {options.learning_max_age:g} s ({listing})")
    return Check("learning", "PASS", f"last successes: {listing}")


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="llm-gateway")
    register(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args()
    sys.exit(parsed.func(parsed))
