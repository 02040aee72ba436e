"""Gateway overhead bench: direct-to-fake vs through the gateway, JSON and streaming, at 1/16/64 clients.

    .venv/bin/python scripts/bench.py [--quick] [--json results.json] [--workers 1] [--latency-ms 20]

Starts the fake upstream (fixed latency, a ~20-word answer) and `llm-gateway serve` as subprocesses
on free loopback ports, then for every (mode, concurrency) sends the same chat completion
requests straight to the fake and through the gateway (closed loop, one httpx client and
keep-alive HTTP/1.1 connection per simulated client, a warm-up that is not measured) and prints
one markdown table: requests/s, p50/p99 latency, time to first byte for streams, the gateway's
own `x-gateway-overhead-ms`, CPU milliseconds per request of the gateway and of the fake
(utime+stime from /proc), and peak RSS.

Bars (docs: GUIDE.md section 8, NOTES-litellm.md): non-streaming overhead p50 <= 10 ms at
concurrency 1 with one worker; CPU per request against ~6 ms for a bare FastAPI + Router app and
~16 ms for the LiteLLM proxy server. The load generator runs on the same cores as both servers,
so throughput at 16/64 clients is a property of this whole machine, not of the gateway alone; the
"other procs" column shows how much CPU anything else used during each measurement (a run where it
is high is noisy: `--wait-idle 300` waits for a quiet machine first).
A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from bench_lib import (
    ChildServer,
    LoadRun,
    cpu_seconds,
    eprint,
    free_port,
    git_revision,
    http_client,
    install_sigterm_as_exit,
    machine_cpu_seconds,
    machine_info,
    mean,
    package_version,
    percentile,
    post_json,
    post_stream,
    run_closed_loop,
    status_kib,
    uvloop_runner,
    worker_clients,
)

ROOT = Path(__file__).resolve().parents[1]
BENCH_KEY = "gw-bench-key-3c9e1a7f5d"
PROVIDER_KEY = "sk-fake-bench-provider-8b2d"
ANSWER = ("Benchmarks measure what a change costs: run the same load before and after, "
          "compare the medians and the tails, and keep the machine quiet.")  # 22 words
PROMPT = "In one sentence: why measure a gateway's overhead before and after a change?"
TIERS = ("fast", "medium", "large", "external")
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"}
# Reference points (NOTES-litellm.md, same machine class): CPU ms per request, JSON / streamed.
REF_ROUTER = {"json": 6.4, "stream": 14.2}
REF_PROXY = {"json": 15.8, "stream": 26.6}
OVERHEAD_BAR_MS = 10.0
NOISY_CORES = 0.15  # other processes using more than this (in cores) make a run's numbers suspect
SETTLE_S = 0.3  # let trailing work of the previous phase finish before reading CPU counters


@dataclass
class Row:
    target: str  # direct | gateway
    mode: str  # json | stream
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    ttfb_p50_ms: float | None
    overhead_p50_ms: float | None
    overhead_p99_ms: float | None
    gateway_cpu_ms: float | None
    fake_cpu_ms: float
    client_cpu_ms: float
    upstream_calls: int | None
    machine_busy_cores: float  # whole machine during the measured run (cores busy, of nproc)
    other_cores: float  # of which not the gateway, the fake or the load generator
    steal_cores: float
    first_error: str | None


# --- servers ---------------------------------------------------------------------------------------


def venv_python() -> Path:
    candidate = ROOT / ".venv" / "bin" / "python"
    return candidate if candidate.exists() else Path(sys.executable)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    # GATEWAY_* variables override the config file: a stray one in the caller's shell must not
    # change what is measured. Proxies are irrelevant on loopback but could intercept it.
    drop = ("GATEWAY_", "LLM_GATEWAY_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
            "all_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


def deployment(group: str, model: str, api_base: str) -> dict[str, Any]:
    return {
        "model_name": group,
        "litellm_params": {"model": f"openai/{model}", "api_base": api_base, "api_key": "os.environ/FAKE_PROVIDER_KEY"},
        "model_info": {"id": model, "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7},
    }


def gateway_config(fake_url: str, workdir: Path, audit: bool = True) -> dict[str, Any]:
    v1 = fake_url + "/v1"
    models = [deployment(tier, f"fake-{tier}", v1) for tier in TIERS] + [deployment("embeddings", "fake-embed", v1)]
    return {
        "model_list": models,
        "router_settings": {"num_retries": 0, "allowed_fails": 0, "cooldown_time": 30},
        "gateway": {
            "tiers": list(TIERS),
            "default_tier": "fast",
            "callers": [{"name": "bench", "role": "agent", "key": "os.environ/BENCH_KEY"}],
            "limits": {"request_timeout_s": 30},  # no default_rpm: the bench must not be rate limited
            "data_dir": str(workdir / "data"),
            "audit": {"enabled": audit},
        },
    }


def start_servers(args: argparse.Namespace, workdir: Path) -> tuple[ChildServer, ChildServer, dict[str, Any]]:
    python = venv_python()
    gateway_bin = python.parent / "llm-gateway"
    script = workdir / "fake.json"
    script.write_text(json.dumps({"default": {"text": ANSWER, "latency_ms": args.latency_ms}}))
    fake_port, gw_port = free_port(), free_port()
    while gw_port == fake_port:
        gw_port = free_port()
    fake = ChildServer("fake upstream", [str(python), "-m", "fake_upstream", "--host", "127.0.0.1",
                                         "--port", str(fake_port), "--latency-ms", str(args.latency_ms),
                                         "--script", str(script)],
                       env=child_env({}), cwd=ROOT, log_path=workdir / "fake.log")
    config = workdir / "gateway.yaml"
    config.write_text(yaml.safe_dump(gateway_config(f"http://127.0.0.1:{fake_port}", workdir,
                                                   audit=not args.no_audit)))
    gateway = ChildServer("gateway", [str(gateway_bin), "serve", "--config", str(config), "--host", "127.0.0.1",
                                      "--port", str(gw_port), "--workers", str(args.workers)],
                          env=child_env({"FAKE_PROVIDER_KEY": PROVIDER_KEY, "BENCH_KEY": BENCH_KEY}),
                          cwd=ROOT, log_path=workdir / "gateway.log")
    fake.start()
    gateway.start()
    info: dict[str, Any] = {"fake_url": f"http://127.0.0.1:{fake_port}", "gateway_url": f"http://127.0.0.1:{gw_port}"}
    info["fake_ready_s"] = fake.wait_ready(info["fake_url"] + "/health", 30)
    info["gateway_ready_s"] = gateway.wait_ready(info["gateway_url"] + "/health/ready", 90)
    time.sleep(1.0)  # let start-up work that trails readiness (imports, pools) finish
    info["gateway_rss_start_kib"] = status_kib(gateway.pid, "VmRSS")
    info["fake_rss_start_kib"] = status_kib(fake.pid, "VmRSS")
    return fake, gateway, info


def idle_load(seconds: float = 1.0) -> float:
    """Cores busy on the machine over `seconds` before anything of the bench runs."""
    busy0, wall0 = machine_cpu_seconds()[0], time.perf_counter()
    time.sleep(seconds)
    return (machine_cpu_seconds()[0] - busy0) / (time.perf_counter() - wall0)


# --- one scenario ----------------------------------------------------------------------------------


async def upstream_calls(client: httpx.AsyncClient, fake_url: str) -> int | None:
    """Clear the fake's request log; returns how many requests it had recorded since the last clear."""
    try:
        response = await client.delete(fake_url + "/_fake/requests")
        return int(response.json()["cleared"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def scenario(target: str, mode: str, concurrency: int, total: int, warmup: int, fake: ChildServer,
                   gateway: ChildServer, info: dict[str, Any], admin: httpx.AsyncClient, shared_pool: bool) -> Row:
    if target == "gateway":
        url, model, key = info["gateway_url"] + "/v1/chat/completions", "fast", BENCH_KEY
    else:
        url, model, key = info["fake_url"] + "/v1/chat/completions", "fake-fast", PROVIDER_KEY
    payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if mode == "stream":
        payload["stream"] = True
    body = json.dumps(payload).encode()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    send = post_stream if mode == "stream" else post_json

    async with worker_clients(concurrency, timeout_s=60, shared=shared_pool) as clients:

        def request(client: httpx.AsyncClient) -> Any:
            return send(client, url, body, headers)

        await run_closed_loop(request, clients, warmup)  # opens every worker's connection; not measured
        await asyncio.sleep(SETTLE_S)
        await upstream_calls(admin, info["fake_url"])
        gw0, fake0, own0 = cpu_seconds(gateway.pid), cpu_seconds(fake.pid), time.process_time()
        (busy0, steal0), wall0 = machine_cpu_seconds(), time.perf_counter()
        run: LoadRun = await run_closed_loop(request, clients, total)
        await asyncio.sleep(SETTLE_S)
        gw1, fake1, own1 = cpu_seconds(gateway.pid), cpu_seconds(fake.pid), time.process_time()
        (busy1, steal1), wall1 = machine_cpu_seconds(), time.perf_counter()
    # CPU of everything else on the machine during the measurement: a busy neighbour skews every number.
    others = max(0.0, (busy1 - busy0) - (gw1 - gw0) - (fake1 - fake0) - (own1 - own0))
    calls = await upstream_calls(admin, info["fake_url"])

    samples = run.samples
    good = [s for s in samples if s.ok]
    latencies = [s.latency * 1000 for s in good]
    ttfbs = [s.ttfb * 1000 for s in good if s.ttfb is not None]
    overheads = [s.overhead_ms for s in good if s.overhead_ms is not None]
    errors = [s for s in samples if not s.ok]
    n = len(samples)
    return Row(
        target=target, mode=mode, concurrency=concurrency, requests=n, errors=len(errors),
        rps=len(good) / run.wall_s if run.wall_s else 0.0,
        p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
        ttfb_p50_ms=percentile(ttfbs, 50) if mode == "stream" else None,
        overhead_p50_ms=percentile(overheads, 50) if target == "gateway" else None,
        overhead_p99_ms=percentile(overheads, 99) if target == "gateway" else None,
        gateway_cpu_ms=(gw1 - gw0) * 1000 / n if target == "gateway" and n else None,
        fake_cpu_ms=(fake1 - fake0) * 1000 / n if n else 0.0,
        client_cpu_ms=run.client_cpu_s * 1000 / n if n else 0.0,
        upstream_calls=calls,
        machine_busy_cores=(busy1 - busy0) / (wall1 - wall0),
        other_cores=others / (wall1 - wall0),
        steal_cores=(steal1 - steal0) / (wall1 - wall0),
        first_error=errors[0].error if errors else None,
    )


async def run_all(args: argparse.Namespace, fake: ChildServer, gateway: ChildServer,
                  info: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    async with http_client(1, timeout_s=10) as admin:
        for mode in args.modes:
            for concurrency in args.concurrency:
                total = args.requests_c1 if concurrency == 1 else args.requests
                warmup = max(args.warmup, concurrency)
                for target in ("direct", "gateway"):
                    for server in (fake, gateway):
                        if not server.alive():
                            raise RuntimeError(f"{server.name} died during the bench; its log:\n{server.log_tail()}")
                    started = time.monotonic()
                    row = await scenario(target, mode, concurrency, total, warmup, fake, gateway, info, admin,
                                         args.shared_pool)
                    eprint(f"  {target:7} {mode:6} c={concurrency:<3} {row.requests} req in "
                           f"{time.monotonic() - started:5.1f} s: {row.rps:7.1f} req/s, p50 {fmt(row.p50_ms)} ms"
                           + (f", {row.errors} errors ({row.first_error})" if row.errors else ""))
                    rows.append(row)
    return rows


# --- report ----------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def find(rows: list[Row], target: str, mode: str, concurrency: int) -> Row | None:
    return next((r for r in rows if (r.target, r.mode, r.concurrency) == (target, mode, concurrency)), None)


def table(rows: list[Row]) -> str:
    head = ("| target | mode | conc | requests | errors | req/s | p50 ms | p99 ms | TTFB p50 ms | overhead p50 ms "
            "| overhead p99 ms | gateway CPU ms/req | fake CPU ms/req | client CPU ms/req | machine busy cores "
            "| other procs cores |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r.target} | {r.mode} | {r.concurrency} | {r.requests} | {r.errors} | {r.rps:.1f} | {fmt(r.p50_ms)} "
            f"| {fmt(r.p99_ms)} | {fmt(r.ttfb_p50_ms)} | {fmt(r.overhead_p50_ms, 2)} | {fmt(r.overhead_p99_ms, 2)} "
            f"| {fmt(r.gateway_cpu_ms, 2)} | {fmt(r.fake_cpu_ms, 2)} | {fmt(r.client_cpu_ms, 2)} "
            f"| {r.machine_busy_cores:.2f} | {r.other_cores:.2f} |"
        )
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary(rows: list[Row], args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    direct, gw = find(rows, "direct", "json", 1), find(rows, "gateway", "json", 1)
    if direct and gw and direct.p50_ms and gw.p50_ms:
        added = gw.p50_ms - direct.p50_ms
        out.append(f"- JSON, 1 client: gateway p50 {gw.p50_ms:.1f} ms vs direct {direct.p50_ms:.1f} ms "
                   f"(+{added:.1f} ms, x{gw.p50_ms / direct.p50_ms:.2f})")
        if gw.overhead_p50_ms is not None:
            out.append(f"- overhead p50, JSON, 1 client, {args.workers} worker(s): header "
                       f"{gw.overhead_p50_ms:.2f} ms, latency difference {added:.1f} ms; bar <= "
                       f"{OVERHEAD_BAR_MS:.0f} ms: header {verdict(gw.overhead_p50_ms <= OVERHEAD_BAR_MS)}, "
                       f"difference {verdict(added <= OVERHEAD_BAR_MS)}")
            out.append("  (the header excludes all time inside the upstream call, litellm.Router's own CPU "
                       "included; the latency difference includes it)")
    for mode in args.modes:
        cpu = [r.gateway_cpu_ms for r in rows if r.target == "gateway" and r.mode == mode and r.gateway_cpu_ms]
        at16 = find(rows, "gateway", mode, 16)
        if not cpu:
            continue
        pick = at16.gateway_cpu_ms if at16 and at16.gateway_cpu_ms else mean(cpu)
        where = "16 clients" if at16 and at16.gateway_cpu_ms else "mean over concurrencies"
        assert pick is not None
        out.append(f"- gateway CPU per {mode} request ({where}): {pick:.2f} ms; vs bare FastAPI+Router "
                   f"~{REF_ROUTER[mode]} ms: x{pick / REF_ROUTER[mode]:.2f}; vs LiteLLM proxy server "
                   f"~{REF_PROXY[mode]} ms: x{pick / REF_PROXY[mode]:.2f} (range over concurrencies "
                   f"{min(cpu):.2f}-{max(cpu):.2f} ms)")
    mismatched = [r for r in rows if r.upstream_calls is not None and r.upstream_calls != r.requests]
    for r in mismatched:
        out.append(f"- NOTE: {r.target} {r.mode} c={r.concurrency}: {r.requests} requests caused "
                   f"{r.upstream_calls} upstream calls")
    noisy = [r for r in rows if r.other_cores > NOISY_CORES]
    if noisy:
        worst = max(noisy, key=lambda r: r.other_cores)
        out.append(f"- NOISY: other processes used > {NOISY_CORES} cores during {len(noisy)} of {len(rows)} "
                   f"scenarios (worst {worst.other_cores:.2f} cores, {worst.target} {worst.mode} "
                   f"c={worst.concurrency}); rerun on a quiet machine before comparing")
    errored = [r for r in rows if r.errors]
    for r in errored:
        out.append(f"- ERRORS: {r.target} {r.mode} c={r.concurrency}: {r.errors} failed, first: {r.first_error}")
    return out


def log_problems(path: Path) -> list[str]:
    """The gateway's WARNING/ERROR/Traceback lines: a quiet log is part of a clean run."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if any(word in line for word in (" WARNING ", " ERROR ", " CRITICAL ", "Traceback"))]


def report(rows: list[Row], info: dict[str, Any], args: argparse.Namespace) -> str:
    m = info["machine"]
    lines = [
        "## llm-gateway bench",
        "",
        f"- machine: {m['nproc']} usable cores ({m['cpu_model'] or 'unknown CPU'}), Linux {m['kernel']}, "
        f"Python {m['python']}, litellm {info['litellm']}, gateway rev {info['revision']}",
        f"- setup: fake upstream latency {args.latency_ms:g} ms, ~20-word answer (streamed one word per chunk, no "
        f"pacing); gateway `--workers {args.workers}`; closed loop, one httpx "
        f"{'pool shared by all workers' if args.shared_pool else 'client per worker'}, HTTP/1.1 keep-alive; "
        f"{args.requests_c1} requests at 1 client, {args.requests} at more, after a warm-up of "
        f"max({args.warmup}, clients) unmeasured requests",
        f"- the load generator, the gateway and the fake share these {m['nproc']} cores: req/s and tail latency "
        "at 16/64 clients are limited by all three; CPU ms/req is per process (utime+stime from /proc)",
        f"- gateway ready after {info['gateway_ready_s']:.1f} s; RSS after start-up "
        f"{info['gateway_rss_start_kib'] / 1024:.0f} MiB, peak (VmHWM) at end "
        f"{info['gateway_hwm_kib'] / 1024:.0f} MiB{' (summed over its processes)' if args.workers > 1 else ''}; "
        f"fake peak {info['fake_hwm_kib'] / 1024:.0f} MiB",
        f"- machine load before the bench: {info['idle_busy_cores']:.2f} cores busy; 'other procs cores' below is "
        "the CPU of everything except the gateway, the fake and the load generator during each measurement",
        "- latency is to the last byte; TTFB is the first body byte; overhead is the gateway's "
        "`x-gateway-overhead-ms` (its time to response start minus the upstream call)",
        "",
        table(rows),
        "",
        "### Summary",
        "",
        *summary(rows, args),
    ]
    problems = info.get("gateway_log_problems") or []
    if problems:
        lines.append(f"- gateway log: {len(problems)} warning/error line(s), first: " + " | ".join(problems[:3]))
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer requests per scenario (a smoke run)")
    parser.add_argument("--no-audit", action="store_true", help="run the gateway with audit.enabled: false "
                        "(compare with a run without it: the audit's cost)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes (default 1)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="fake upstream latency (default 20)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated client counts (default 1,16,64)")
    parser.add_argument("--modes", default="json,stream", help="json, stream or both (default json,stream)")
    parser.add_argument("--requests", type=int, default=None, help="requests per scenario above 1 client")
    parser.add_argument("--requests-c1", type=int, default=None, help="requests per scenario at 1 client")
    parser.add_argument("--shared-pool", action="store_true", help="all workers share one httpx pool (slow "
                        "client at high concurrency) instead of one keep-alive client per worker")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for other processes to go quiet before starting (default 0)")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per scenario (at least the "
                        "client count)")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs positive integers")
    if not args.modes or set(args.modes) - {"json", "stream"}:
        parser.error("--modes takes json and/or stream")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.requests is None:
        args.requests = 200 if args.quick else 800
    if args.requests_c1 is None:
        args.requests_c1 = 50 if args.quick else 200
    if args.quick:
        args.warmup = min(args.warmup, 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path("/proc/self/stat").exists():
        eprint("bench.py reads /proc: Linux only")
        return 2
    install_sigterm_as_exit()
    info: dict[str, Any] = {"machine": machine_info(), "litellm": package_version("litellm", str(venv_python())),
                            "revision": git_revision(ROOT)}
    fake = gateway = None
    with tempfile.TemporaryDirectory(prefix="llm-gateway-bench-") as tmp:
        workdir = Path(tmp)
        try:
            info["idle_busy_cores"] = idle_load()
            waited_until = time.monotonic() + args.wait_idle
            while info["idle_busy_cores"] > NOISY_CORES and time.monotonic() < waited_until:
                info["idle_busy_cores"] = idle_load(2.0)
            if info["idle_busy_cores"] > NOISY_CORES:
                eprint(f"warning: the machine is not idle ({info['idle_busy_cores']:.2f} cores busy before the bench)")
            eprint("starting the fake upstream and the gateway ...")
            fake, gateway, started = start_servers(args, workdir)
            info.update(started)
            eprint(f"gateway ready in {info['gateway_ready_s']:.1f} s at {info['gateway_url']}; fake at "
                   f"{info['fake_url']}")
            with uvloop_runner() as runner:
                rows = runner.run(run_all(args, fake, gateway, info))
            info["gateway_hwm_kib"] = status_kib(gateway.pid, "VmHWM")
            info["fake_hwm_kib"] = status_kib(fake.pid, "VmHWM")
        except KeyboardInterrupt:
            eprint("interrupted")
            return 130
        except RuntimeError as exc:
            eprint(f"bench failed: {exc}")
            return 1
        finally:
            for server in (gateway, fake):
                if server is not None:
                    server.stop()
            info["gateway_log_problems"] = log_problems(workdir / "gateway.log")
    print(report(rows, info, args), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "args": vars(args),
                                               "rows": [asdict(r) for r in rows]}, indent=2))
        eprint(f"raw results written to {args.json}")
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
