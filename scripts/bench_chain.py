"""Bench: the cost of skipping cooled-down providers in the external chain.

Starts the fake upstream and one gateway whose `external` tier is a chain of three providers.
The first two answer 429 with a long Retry-After, so after one request they are cooling down.
Then, in one run, it measures requests to the chain (`model: external`, which must skip the two
cooling providers) against requests straight to the third provider (`model: fake-c`, a named
deployment), interleaved in rounds so both see the same machine state.

Bar (issue "Tier routing"): the chain adds <= 5 ms p50 over the direct request.

    .venv/bin/python scripts/bench_chain.py [--requests 300] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lib import ChildServer, free_port, percentile, post_json, worker_clients

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
KEY = "bench-chain-key"


def config(fake_port: int, data_dir: Path) -> dict:
    base = f"http://127.0.0.1:{fake_port}/v1"

    def dep(group: str, model: str, order: int | None = None) -> dict:
        params = {"model": f"openai/{model}", "api_base": base, "api_key": "os.environ/FAKE_PROVIDER_KEY"}
        if order is not None:
            params["order"] = order
        return {"model_name": group, "litellm_params": params,
                "model_info": {"id": model, "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}}

    return {
        "model_list": [dep("fast", "fake-fast"), dep("medium", "fake-medium"), dep("large", "fake-large"),
                       dep("external", "fake-a", 1), dep("external", "fake-b", 2), dep("external", "fake-c", 3),
                       dep("embeddings", "fake-embed")],
        "router_settings": {"num_retries": 0, "allowed_fails": 0, "cooldown_time": 3600},
        "gateway": {"callers": [{"name": "bench", "key": "os.environ/BENCH_KEY"}], "data_dir": str(data_dir)},
    }


async def measure(url: str, model: str, n: int, concurrency: int) -> list[float]:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Say something short."}]}).encode()
    headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
    latencies: list[float] = []
    async with worker_clients(concurrency, 30) as clients:
        async def worker(client: httpx.AsyncClient, count: int) -> None:
            for _ in range(count):
                sample = await post_json(client, url + "/v1/chat/completions", body, headers)
                if not sample.ok:
                    raise RuntimeError(sample.error)
                latencies.append(sample.latency * 1000)

        await asyncio.gather(*(worker(c, n // concurrency) for c in clients))
    return latencies


async def main_async(args: argparse.Namespace, gateway_url: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"chain (2 cooling)": [], "direct to third": []}
    for model in ("external", "fake-c"):  # warm up both paths, and put fake-a/fake-b into cooldown
        await measure(gateway_url, model, 20, 1)
    rounds = 5
    for _ in range(rounds):
        results["chain (2 cooling)"] += await measure(gateway_url, "external", args.requests // rounds,
                                                      args.concurrency)
        results["direct to third"] += await measure(gateway_url, "fake-c", args.requests // rounds,
                                                    args.concurrency)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        tmpdir = Path(tmp)
        env = {**os.environ, "FAKE_PROVIDER_KEY": "sk-bench-fake", "BENCH_KEY": KEY,
               "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"}
        fake_port, gw_port = free_port(), free_port()
        script = tmpdir / "script.yaml"
        script.write_text(yaml.safe_dump({"models": {"fake-a": {"status": 429, "retry_after": 3600},
                                                     "fake-b": {"status": 429, "retry_after": 3600}}}))
        fake = ChildServer("fake", [str(PYTHON), "-m", "fake_upstream", "--port", str(fake_port), "--latency-ms",
                                    str(args.latency_ms), "--script", str(script)],
                           env=env, cwd=ROOT, log_path=tmpdir / "fake.log").start()
        cfg = tmpdir / "gateway.yaml"
        cfg.write_text(yaml.safe_dump(config(fake_port, tmpdir / "data")))
        gateway = ChildServer("gateway", [str(ROOT / ".venv" / "bin" / "llm-gateway"), "serve", "--config", str(cfg),
                                          "--port", str(gw_port)], env=env, cwd=ROOT,
                              log_path=tmpdir / "gateway.log").start()
        try:
            fake.wait_ready(f"http://127.0.0.1:{fake_port}/health", 30)
            gateway.wait_ready(f"http://127.0.0.1:{gw_port}/health/ready", 60)
            results = asyncio.run(main_async(args, f"http://127.0.0.1:{gw_port}"))
        finally:
            gateway.stop()
            fake.stop()

    print(f"## chain bench: fake latency {args.latency_ms} ms, {args.requests} requests per path, "
          f"concurrency {args.concurrency}, interleaved in 5 rounds\n")
    print("| path | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {percentile(values, 50):.2f} | {percentile(values, 90):.2f} | "
              f"{percentile(values, 99):.2f} | {statistics.fmean(values):.2f} |")
    added = (percentile(results["chain (2 cooling)"], 50) or 0) - (percentile(results["direct to third"], 50) or 0)
    verdict = "PASS" if added <= 5 else "FAIL"
    print(f"\nchain adds {added:+.2f} ms p50 over a request straight to the third provider (bar <= 5 ms): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
