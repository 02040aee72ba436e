"""The worker end to end on a real SQLite database: `learn --once`, `history`, `rollback`, the
overlay file, the scheduler, and a gateway-side `StatePoller` picking the new version up."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from learning.runner import LearningContext, run_cycle
from learning.worker import LearningWorker
from plugins.state import StateHolder
from proxy.learn_cli import register
from proxy.state_poller import StatePoller
from store.db import session_factory
from store.queries import list_learned_states, save_learned_state
from tests.learning.factories import add_review, record, write_records
from tests.support.servers import ENV

REPO = Path(__file__).resolve().parents[2]


def learn(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="llm-gateway")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["learn", *argv])
    code = int(args.func(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def fill_code_generation(engine: Engine) -> None:
    """code_generation (config default: medium) answered well on medium and, explored, on fast."""
    now = datetime.now(UTC)
    records = [record(i, task="code_generation", tiers=["medium"], created=now - timedelta(minutes=i))
               for i in range(40)]
    records += [record(100 + i, task="code_generation", tiers=["fast"], created=now - timedelta(minutes=i))
                for i in range(35)]
    records += [record(200 + i, task="code_review", tiers=["fast", "medium"], created=now - timedelta(minutes=i))
                for i in range(5)]
    write_records(engine, records)


def fill_verdicts(engine: Engine) -> None:
    """Reviewed answers: everything from 5.0 up accepted, below rejected (approved should drop)."""
    now = datetime.now(UTC)
    records = []
    for i in range(300):
        confidence = round(3.0 + 7.0 * i / 300, 1)
        status = "approved" if confidence >= 7 else "warning" if confidence >= 4 else "pending_review"
        records.append(record(1000 + i, task="chat", tiers=["fast"], status=status, confidence=confidence,
                              created=now - timedelta(minutes=i)))
    write_records(engine, records)
    for i, rec in enumerate(records):
        add_review(engine, rec.request_id, "approved" if (rec.confidence or 0) >= 5.0 else "rejected",
                   8.0 if i % 2 else None)


def test_once_history_and_rollback(context: LearningContext, config_path: Path, engine: Engine,
                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    overlay = tmp_path / "config" / "learned.yaml"
    common = ["--config", str(config_path), "--overlay", str(overlay)]
    fill_code_generation(engine)

    code, out = learn(capsys, "--once", "--cycle", "assignments", "--dry-run", *common)
    assert code == 0 and "dry-run" in out, out
    assert "assignments.code_generation: medium -> fast" in out and "fast approval 100.0%" in out
    assert "[medium 40, fast 35]" in out
    with session_factory(engine)() as session:
        assert list_learned_states(session) == []  # a dry run saves nothing
    assert not overlay.exists()

    code, out = learn(capsys, "--once", "--cycle", "assignments", *common)
    assert code == 0 and "saved: version 1 is active" in out, out
    with session_factory(engine)() as session:
        [v1] = list_learned_states(session)
    assert v1.active and v1.source == "learning:assignments"
    assert v1.state["assignments"]["code_generation"] == "fast"
    assert v1.state["exploration"]["code_review"] == 0.1  # explores fast, where it has 0 samples
    assert "code_generation" not in v1.state["exploration"]  # fast: nothing cheaper to explore
    change = next(c for c in v1.reasons["changes"] if c["key"] == "assignments.code_generation")
    assert change["samples"] == {"medium": 40, "fast": 35} and v1.reasons["based_on"] == 0
    rendered = yaml.safe_load(overlay.read_text())["learned"]
    assert rendered["version"] == 1 and rendered["assignments"]["code_generation"] == "fast"
    assert not list(overlay.parent.glob(".*.tmp"))  # written atomically, no temp file left behind

    fill_verdicts(engine)
    code, out = learn(capsys, "--once", "--cycle", "thresholds", *common)
    assert code == 0 and "version 2" in out and "thresholds.approved: 7 -> 6.5" in out, out
    assert "clamped: true" in out

    code, out = learn(capsys, "history", *common[:2])
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("*") and "learning:thresholds" in lines[1] and "thresholds.approved 7->6.5" in lines[1]
    assert "learning:assignments" in lines[2] and "assignments.code_generation medium->fast" in lines[2]

    code, out = learn(capsys, "rollback", "1", *common)
    assert code == 0 and "version 1" in out and "(was 2)" in out, out
    with session_factory(engine)() as session:
        active = [r.version for r in list_learned_states(session) if r.active]
    assert active == [1]
    assert yaml.safe_load(overlay.read_text())["learned"]["version"] == 1

    code, out = learn(capsys, "rollback", "99", *common)
    assert code == 1 and "99 not found" in out


def test_too_little_data_changes_nothing_and_says_so(context: LearningContext, engine: Engine,
                                                     capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    initial = context.initial.to_json()
    initial.pop("version")
    for cycle in ("validators", "thresholds"):
        report = run_cycle(context, cycle)
        assert report.status == "unchanged" and "need" in report.render()
    with session_factory(engine)() as session:
        runs = list_learned_states(session)
    # Each run is recorded (the versions table is the run log), with the config's values unchanged.
    assert [(r.version, r.source) for r in runs] == [(2, "learning:thresholds"), (1, "learning:validators")]
    assert all(r.state == initial and r.reasons["changes"] == [] for r in runs)
    code, out = learn(capsys, "history", "--config", str(config_path))
    assert code == 0 and "no change: only 0 verdicts" in out
    quiet = LearningContext(**{**context.__dict__, "config": context.config.model_copy(
        update={"record_unchanged_runs": False})})
    assert run_cycle(quiet, "validators").version is None


def test_an_invalid_merged_state_is_rejected_whole(context: LearningContext, engine: Engine) -> None:
    with session_factory(engine)() as session:
        save_learned_state(session, {"assignments": {"chat": "fast"}, "exploration": {"chat": 0.9}},
                           source="manual")
    fill_code_generation(engine)
    report = run_cycle(context, "thresholds")  # merges into a state whose exploration is out of range
    assert report.status == "rejected" and "exploration share" in report.message
    with session_factory(engine)() as session:
        assert len(list_learned_states(session)) == 1  # nothing saved
    report = run_cycle(context, "assignments")
    assert report.status == "saved"  # the assignments cycle rewrites exploration within bounds


def test_command_lines_work_as_a_user_runs_them(config_path: Path) -> None:
    env = {**os.environ, **ENV}
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "learn", "history", "--config", str(config_path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "no learned versions yet" in result.stdout, result.stderr


def test_worker_runs_the_cycles_on_its_schedule(context: LearningContext, engine: Engine) -> None:
    fill_code_generation(engine)

    async def main() -> list[Any]:
        worker = LearningWorker(context, intervals_s={"assignments": 0.2, "validators": 0.2}, run_at_start=True)
        await worker.start()
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                if len(worker.reports) >= 3:
                    break
        finally:
            await worker.stop()
        return worker.reports

    reports = asyncio.run(main())
    assert {r.cycle for r in reports} == {"assignments", "validators"}
    assert next(r.status for r in reports if r.cycle == "assignments") == "saved"


def test_poller_swaps_new_versions_in_and_refuses_bad_ones(context: LearningContext, engine: Engine) -> None:
    holder = StateHolder(context.initial, context.tiers, context.scorer)
    poller = StatePoller(engine, holder, interval_s=0.05)
    sessions = session_factory(engine)
    state = context.initial.to_json()

    async def main() -> None:
        await poller.start()
        assert poller.version == 0 and poller.last_error is None
        with sessions() as session:
            save_learned_state(session, {**state, "assignments": {**state["assignments"], "chat": "large"}},
                               source="test")
        for _ in range(100):
            if poller.version == 1:
                break
            await asyncio.sleep(0.02)
        assert holder.current.version == 1 and holder.current.assignments["chat"] == "large"
        assert poller.runs == {} and poller.clamped is None  # a manual version is no learning run
        report = await asyncio.to_thread(run_cycle, context, "thresholds")
        assert report.version == 2
        assert await poller.poll_once() and set(poller.runs) == {"thresholds"} and poller.clamped is False
        with sessions() as session:
            save_learned_state(session, {**state, "assignments": {"chat": "gigantic"}}, source="test")
        assert not await poller.poll_once()
        assert holder.current.version == 2 and "gigantic" in (poller.last_error or "")
        await poller.stop()

    asyncio.run(main())


def test_a_running_gateway_serves_the_new_assignment(make_gateway: Any, tmp_path: Path) -> None:
    import httpx

    from tests.support.servers import AGENT_KEY

    server = make_gateway(data_dir=str(tmp_path / "gwdata"))
    gateway = server.gateway

    def tier_for(task: str, content: str) -> str:  # a new conversation each time (no session pin)
        response = httpx.post(server.url + "/v1/chat/completions", timeout=15,
                              headers={"Authorization": f"Bearer {AGENT_KEY}", "x-task-type": task},
                              json={"model": "auto", "messages": [{"role": "user", "content": content}]})
        return response.headers["x-gateway-tier"]

    assert tier_for("code_generation", "write a sort") == "medium"
    state = gateway.state.current.state.to_json()
    with session_factory(gateway.engine)() as session:
        save_learned_state(session, {**state, "assignments": {**state["assignments"], "code_generation": "fast"}},
                           source="learning:assignments")
    wired = getattr(gateway, "poller", None)
    if wired is None:  # until the lead wires the poller into the lifespan, poll from here
        asyncio.run(StatePoller(gateway.engine, gateway.state).poll_once())
    else:
        for _ in range(200):
            if gateway.state.current.version == 1:
                break
            asyncio.run(asyncio.sleep(0.05))
    assert gateway.state.current.version == 1
    assert tier_for("code_generation", "write a merge") == "fast"
