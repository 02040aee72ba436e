"""No answered call goes unaudited: not when PostgreSQL drops out mid-load, not on SIGTERM.

(a) A gateway on PostgreSQL through a TCP proxy the test cuts in the middle of a load and then
restores: every request id the callers saw ends up in `audit_log` exactly once (spooled during
the outage, replayed after).
(b) A gateway subprocess on SQLite gets SIGTERM while requests are in flight: after it exits, the
database plus any spool hold exactly the requests that got an answer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.support.servers import AGENT_KEY, ENV, GatewayServer, base_config
from tests.support.services import TcpProxy, postgres_reachable, postgres_schema, with_address

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"authorization": f"Bearer {AGENT_KEY}"}


def chat_body(latency_ms: float) -> dict[str, Any]:
    scripted = json.dumps({"text": "The answer is 42.", "latency_ms": latency_ms})
    return {"model": "fake-fast", "messages": [{"role": "user", "content": f"What is 6 x 7? [[fake:{scripted}]]"}]}


class Load:
    """`threads` callers sending until told to stop (or refused); answered request ids are kept."""

    def __init__(self, url: str, threads: int, latency_ms: float, total: int | None = None) -> None:
        self.url = url + "/v1/chat/completions"
        self.body = chat_body(latency_ms)
        self.total = total
        self.answered: list[str] = []
        self.failures: list[str] = []  # HTTP answers other than 200
        self.refused: list[str] = []  # no answer at all (the server stopped listening or closed)
        self._sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def _claim(self) -> bool:
        with self._lock:
            if self._stop.is_set() or (self.total is not None and self._sent >= self.total):
                return False
            self._sent += 1
            return True

    def _run(self) -> None:
        while self._claim():
            try:
                response = httpx.post(self.url, headers=HEADERS, json=self.body, timeout=20)
            except httpx.TransportError as exc:
                with self._lock:
                    self.refused.append(type(exc).__name__)
                return
            with self._lock:
                if response.status_code == 200:
                    self.answered.append(response.headers["x-request-id"])
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")

    def wait_answered(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answered) < count:
            assert time.monotonic() < deadline, f"only {len(self.answered)} of {count} answers came"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a caller thread hung"


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


# -- (a) PostgreSQL goes away mid-load ----------------------------------------------------------


@pytest.mark.postgres
def test_no_record_is_lost_when_postgres_drops_out_mid_load(
    make_gateway: Callable[..., GatewayServer], tmp_path: Path
) -> None:
    if not postgres_reachable():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    total = 60
    with postgres_schema(prefix="test_durable") as url, TcpProxy("127.0.0.1", 5432) as proxy:
        server = make_gateway(data_dir=str(tmp_path / "data"), database_url=with_address(url, proxy.host, proxy.port))
        load = Load(server.url, threads=4, latency_ms=20, total=total).start()
        load.wait_answered(total // 3)
        proxy.cut()
        try:
            load.wait_answered(2 * total // 3)
            # The outage was real: the sink had to divert live batches to its spool.
            wait_until(lambda: server.gateway.sink.stats.spooled > 0, 10, "a batch to be spooled")
        finally:
            proxy.restore()
        load.join()
        assert load.failures == load.refused == [] and len(load.answered) == total

        direct = create_engine(url)  # not through the proxy: what the database really holds
        try:
            def stored() -> dict[str, int]:
                with direct.connect() as connection:
                    rows = connection.execute(text("SELECT request_id, count(*) FROM audit_log GROUP BY request_id"))
                    return {request_id: count for request_id, count in rows}

            # The sink's replayer probes every 5 s (AuditSink's default replay_interval_s).
            sink = server.gateway.sink
            wait_until(lambda: len(stored()) >= total and sink.spool_depth == 0, 20, "the spool replayed")
            counts = stored()
        finally:
            direct.dispose()
        assert set(counts) == set(load.answered)
        assert set(counts.values()) == {1}


# -- (b) SIGTERM under load ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def recorded_ids(data_dir: Path) -> list[str]:
    """Request ids in the SQLite audit_log plus any rows left in the spool."""
    ids: list[str] = []
    database = data_dir / "gateway.db"
    if database.exists():
        with sqlite3.connect(database) as connection:
            ids += [row[0] for row in connection.execute("SELECT request_id FROM audit_log")]
    for spooled in sorted((data_dir / "spool").glob("audit-spool.jsonl*")):
        ids += [json.loads(line)["request_id"] for line in spooled.read_text().splitlines() if line.strip()]
    return ids


def test_sigterm_under_load_loses_no_answered_call(fake: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(base_config(fake.url, data_dir=str(data_dir), log_level="WARNING")))
    port = free_port()
    log = (tmp_path / "gateway.log").open("wb")  # a file, not a pipe: a full pipe would block the gateway
    env = {**os.environ, **ENV, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true",
           "HF_HUB_OFFLINE": "1", "LITELLM_TELEMETRY": "False"}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "serve", "--config", str(config), "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, "the gateway exited at start"
            try:
                return httpx.get(url + "/health/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 30, "the gateway to start")
        load = Load(url, threads=8, latency_ms=150).start()
        load.wait_answered(24)
        time.sleep(0.075)  # half an answer's latency: the next callers' requests are in flight now
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=30)
        load.stop()
        load.join()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "gateway.log").read_text(errors="replace")
    assert returncode in (0, -signal.SIGTERM), output
    assert len(load.answered) > 24, "requests in flight at SIGTERM were not answered (no graceful drain)"
    assert load.failures == []  # callers after SIGTERM are refused; none gets an error answer

    recorded = recorded_ids(data_dir)
    assert sorted(recorded) == sorted(load.answered), output  # every answered call, once; nothing else
