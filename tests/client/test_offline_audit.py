"""No hole in the audit: calls answered offline reach the gateway's audit log once it is back."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from llm_gateway_client import LLMGatewayClient

from tests.client.support import FakeClock, Switch, ask
from tests.support.servers import ADMIN_KEY, AGENT_KEY


def offline_audit(server: Any, expected: set[str], timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    """The gateway's offline audit rows by request id, once all of `expected` are there (the sink batches)."""
    deadline = time.monotonic() + timeout
    while True:
        rows: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            params: dict[str, Any] = {"offline": "true", "limit": 500, **({"cursor": cursor} if cursor else {})}
            response = httpx.get(server.url + "/v1/audit", params=params,
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
            assert response.status_code == 200, response.text
            page = response.json()
            rows.update({row["request_id"]: row for row in page["data"]})
            cursor = page["next_cursor"]
            if cursor is None:
                break
        if expected <= set(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_gateway_goes_down_and_comes_back_and_offline_calls_reach_the_audit(make_gateway, make_client, state_dir,
                                                                            sleeps, ollama, tmp_path):
    first = make_gateway(data_dir=str(tmp_path / "gateway-data"))
    switch = Switch(first.port).on()
    clock = FakeClock()
    client = make_client(switch.url, health_cooldown=30, clock=clock)
    try:
        assert client.completion("chat", ask("online")).mode == "gateway"

        switch.off()
        first.stop()  # the gateway process is gone
        offline = [client.completion("summarization", ask("offline one"))]
        assert offline[0].mode == "fallback" and offline[0].model == "qwen2.5:7b"
        assert len(sleeps) == 2
        offline.append(client.completion("chat", ask("offline two")))  # inside the cool-down: no gateway try
        offline.append(client.classify(ask("yes"), ["yes", "no"]))
        assert [r.mode for r in offline] == ["fallback"] * 3 and len(sleeps) == 2
        assert len((state_dir / "offline.jsonl").read_text().splitlines()) == 3

        second = make_gateway(data_dir=str(tmp_path / "gateway-data"))  # a new process behind the same URL
        switch.on(second.port)
        assert client.completion("chat", ask("still cooling down")).mode == "fallback"
        offline_ids = {r.id for r in offline} | {json.loads(line)["request_id"] for line in
                                                 (state_dir / "offline.jsonl").read_text().splitlines()}
        clock.advance(31)  # the cool-down passes: the next call probes once, finds the gateway, uploads
        back = client.completion("chat", ask("back online"))
        assert back.mode == "gateway" and back.model.startswith("fake-")
        assert len(sleeps) == 2 and len(ollama.requests_to("/api/chat")) == 4
    finally:
        switch.off()

    assert list(state_dir.glob("offline*.jsonl")) == []  # uploaded, then deleted
    rows = offline_audit(second, offline_ids)
    assert set(rows) == offline_ids
    for row in rows.values():
        assert row["offline"] is True and row["route"] == "offline"
        assert row["served_model"] == "qwen2.5:7b" and row["caller"] == "agent"
    assert {row["task_type"] for row in rows.values()} == {"summarization", "chat", "classification"}


def test_records_left_by_a_crash_are_uploaded_in_batches_and_only_once(make_gateway, state_dir, ollama, tmp_path):
    """A previous process died after rotating (and mid-append): its records still reach the audit,
    in batches small enough for the gateway (its body limit here is 64 KiB: batches are halved on
    413), and uploading the same records again adds nothing."""
    gateway = make_gateway(data_dir=str(tmp_path / "gateway-data"))
    state_dir.mkdir(parents=True)
    records: list[dict[str, Any]] = [{"request_id": f"offline-crash-{i:04d}", "created_at": "2026-01-31T12:00:00+00:00",
                "task_type": "chat", "model": "qwen2.5:7b", "prompt": f"q{i}", "output": f"a{i}",
                "latency_ms": 10.0, "tokens_in": 3, "tokens_out": 4} for i in range(620)]
    lines = [json.dumps(r) for r in records]
    (state_dir / "offline-20260131T120000000000-1-abcd.upload.jsonl").write_text("\n".join(lines[:600]) + "\n")
    (state_dir / "offline.jsonl").write_text("\n".join(lines[600:]) + '\n{"request_id": "offline-torn", "crea')
    ids = {r["request_id"] for r in records}

    with LLMGatewayClient(gateway.url, AGENT_KEY, state_dir=state_dir, ollama_url=ollama.url) as client:
        assert client.completion("chat", ask("hello")).mode == "gateway"  # the first success uploads
    assert list(state_dir.glob("offline*.jsonl")) == []
    assert ids <= set(offline_audit(gateway, ids))

    (state_dir / "offline.jsonl").write_text("\n".join(lines[:10]) + "\n")  # the same records again
    with LLMGatewayClient(gateway.url, AGENT_KEY, state_dir=state_dir, ollama_url=ollama.url) as client:
        client.upload_offline()
    assert list(state_dir.glob("offline*.jsonl")) == []
    time.sleep(0.5)  # give the sink time to (not) write duplicates
    rows = offline_audit(gateway, ids)
    assert len(rows) == 620
