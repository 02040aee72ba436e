"""Graceful shutdown of a real gateway process (SIGTERM), as an operator and a client see it.

One gateway subprocess (--drain-delay 1 --shutdown-grace 4) gets SIGTERM while a slow JSON
request and a slow stream are in flight; the tests below assert on what was observed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.ops.support import GatewayProcess
from tests.support.servers import AGENT_KEY, base_config

DRAIN_DELAY_S = 1.0
GRACE_S = 4
SLOW_JSON_MS = 2500
AUTH = {"Authorization": f"Bearer {AGENT_KEY}"}
LONG_TEXT = " ".join(f"word{i}" for i in range(60))  # 30 s at 2 tokens/s: outlasts the grace


@dataclass
class Observed:
    ready_status: list[int] = field(default_factory=list)
    ready_503_after_s: float | None = None
    live_status: int | None = None
    during_drain: httpx.Response | None = None
    json_response: httpx.Response | None = None
    stream_request_id: str | None = None
    stream_events: list[Any] = field(default_factory=list)
    exit_code: int | None = None
    exit_after_s: float = 0.0
    audit: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    log: str = ""


def _chat(url: str, content: str, **extra: Any) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30)


def _stream(url: str, seen: Observed, first_chunk: threading.Event) -> None:
    directive = json.dumps({"tokens_per_s": 2, "text": LONG_TEXT})
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": f"[[fake:{directive}]] hi"}]}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30) as response:
        assert response.status_code == 200, response.read()
        seen.stream_request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            seen.stream_events.append(data if data == "[DONE]" else json.loads(data))
            first_chunk.set()


@pytest.fixture(scope="module")
def observed(fake: Any, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    workdir = tmp_path_factory.mktemp("shutdown")
    data_dir = workdir / "data"
    config = base_config(fake.url, data_dir=str(data_dir), quality={"stream_mode": "passthrough"})
    gateway = GatewayProcess(config, workdir, "--drain-delay", str(DRAIN_DELAY_S), "--shutdown-grace", str(GRACE_S))
    seen = Observed()
    gateway.start()
    try:
        first_chunk = threading.Event()
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(_chat, gateway.url, f'[[fake:{{"latency_ms": {SLOW_JSON_MS}}}]] slow question')
            streaming = pool.submit(_stream, gateway.url, seen, first_chunk)
            assert first_chunk.wait(15), "the stream never started"
            time.sleep(0.2)  # the slow JSON request is in flight by now
            signalled = gateway.signal()
            while time.monotonic() - signalled < DRAIN_DELAY_S * 0.8:
                status = httpx.get(gateway.url + "/health/ready", timeout=1).status_code
                seen.ready_status.append(status)
                if status == 503:
                    seen.ready_503_after_s = time.monotonic() - signalled
                    break
                time.sleep(0.02)
            seen.live_status = httpx.get(gateway.url + "/health/live", timeout=1).status_code
            seen.during_drain = _chat(gateway.url, "a new call while readiness is off")
            seen.exit_code = gateway.wait(DRAIN_DELAY_S + GRACE_S + 15)
            seen.exit_after_s = time.monotonic() - signalled
            seen.json_response = slow.result(timeout=5)
            streaming.result(timeout=5)
    finally:
        gateway.stop()
        seen.log = gateway.log()
    with sqlite3.connect(data_dir / "gateway.db") as db:
        for request_id, status, error_class in db.execute("SELECT request_id, status, error_class FROM audit_log"):
            seen.audit[request_id] = (status, error_class)
    return seen


def test_readiness_goes_off_at_once_while_the_process_keeps_serving(observed: Observed) -> None:
    assert observed.ready_503_after_s is not None, f"readiness never went 503: {observed.ready_status}"
    assert observed.ready_503_after_s < 0.5
    assert observed.live_status == 200
    assert observed.during_drain is not None and observed.during_drain.status_code == 200


def test_in_flight_request_completes(observed: Observed) -> None:
    assert observed.json_response is not None
    assert observed.json_response.status_code == 200, observed.json_response.text
    assert observed.json_response.json()["choices"][0]["message"]["content"]


def test_open_stream_ends_with_a_shutting_down_error_event(observed: Observed) -> None:
    events = observed.stream_events
    assert len(events) >= 2, events
    assert "[DONE]" not in events
    assert all("choices" in event for event in events[:-1])
    final = events[-1]
    assert isinstance(final, dict) and final["error"]["code"] == "shutting_down", final
    assert final["error"]["type"] == "service_unavailable"


def test_process_exits_within_the_bound(observed: Observed) -> None:
    assert observed.exit_code in (0, -15), observed.log[-2000:]  # -15: uvicorn re-raises SIGTERM once done
    assert observed.exit_after_s < DRAIN_DELAY_S + GRACE_S + 3, observed.exit_after_s
    assert "Traceback" not in observed.log, observed.log[-3000:]


def test_every_answered_request_is_in_the_audit_log(observed: Observed) -> None:
    assert observed.json_response is not None and observed.during_drain is not None
    answered = [observed.json_response.headers["x-request-id"], observed.during_drain.headers["x-request-id"]]
    for request_id in answered:
        assert observed.audit.get(request_id, ("missing",))[0] == "approved", (request_id, observed.audit)
    assert observed.stream_request_id in observed.audit
    assert observed.audit[observed.stream_request_id][0] == "error"
