"""Reviewer console: server time of the queue page with 100k audit rows and 10k pending items.

    .venv/bin/python scripts/bench_console.py [--audit 100000] [--pending 10000] [--runs 50] [--database-url URL]

Fills a fresh database (SQLite in a temp dir by default) through the real writer, starts a real
gateway on it, signs in, and times GET /ui/queue (first page, a filtered page, a deep keyset page)
over loopback (round trip: an upper bound of the server time). Target: p50 < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

for _k, _v in {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"}.items():
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from core.records import AuditRecord  # noqa: E402
from store.db import make_engine, migrate, session_factory  # noqa: E402
from store.redact import prepare_row  # noqa: E402
from store.writer import AuditWriter  # noqa: E402
from tests.support.servers import ADMIN_KEY, ENV, GatewayServer  # noqa: E402


def fill(url: str, audit: int, pending: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    writer = AuditWriter(engine)
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    review_every = max(1, audit // pending)
    batch = []
    for i in range(audit):
        status = "pending_review" if i % review_every == 0 else rng.choice(("approved", "warning"))
        batch.append(prepare_row(AuditRecord(
            request_id=f"bench-{i}", created_at=start + timedelta(seconds=i * 25),
            caller=rng.choice(("ci", "codex", "claude")),
            route="chat", task_type=rng.choice(("chat", "code_generation", "summarization")), tier="fast",
            status=status, confidence=rng.uniform(0, 10), tokens_in=100, tokens_out=50, cost=1e-5,
            prompt="p" * 200, output="o" * 200), "review_only"))
        if len(batch) == 2000:
            writer.write(batch)
            batch = []
    writer.write(batch)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    os.environ.update(ENV)
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    url = args.database_url or f"sqlite:///{work / 'gateway.db'}"
    started = time.perf_counter()
    fill(url, args.audit, args.pending)
    print(f"filled {args.audit} audit rows / ~{args.pending} pending items in {time.perf_counter() - started:.0f} s")
    from fake_upstream.server import FakeUpstream
    from tests.support.servers import base_config

    with FakeUpstream() as fake:
        config = base_config(fake.url, database_url=url)
        with GatewayServer(config, work / "gw") as server, httpx.Client(base_url=server.url, timeout=30) as http:
            form = http.get("/ui/signin")
            csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
            http.post("/ui/signin", data={"key": ADMIN_KEY, "csrf": csrf, "next": "/ui/queue"})
            with session_factory(server.gateway.engine)() as s:
                from store.console import QueueFilter, queue_page
                deep = queue_page(s, QueueFilter(), cursor=None, limit=500)
                for _ in range(10):
                    deep = queue_page(s, QueueFilter(), cursor=deep.next_cursor, limit=500)
            cursor = deep.next_cursor
            rows = []
            for name, path in (("first page", "/ui/queue"), ("filtered", "/ui/queue?task_type=chat&caller=ci"),
                               ("deep page", f"/ui/queue?cursor={cursor}")):
                times = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    response = http.get(path)
                    times.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200, response.text[:300]
                rows.append((name, statistics.median(times), sorted(times)[int(len(times) * 0.9)]))
    print(f"| queue page ({args.audit} audit rows, {args.pending} pending) | p50 ms | p90 ms |")
    print("|---|---|---|")
    for name, p50, p90 in rows:
        print(f"| {name} | {p50:.1f} | {p90:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
