"""The systemd units: secrets from an EnvironmentFile, restart on failure, a stop timeout above the
graceful-shutdown bound, hardening, a service user; `systemd-analyze verify` where it exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ops.support import ROOT

UNITS = ROOT / "scripts" / "systemd"


def directives(path: Path) -> dict[str, list[str]]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # continuation lines
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("unit", ["llm-gateway.service", "llm-gateway-learn.service"])
def test_unit_is_hardened_and_restartable(unit: str) -> None:
    d = directives(UNITS / unit)
    assert d["User"] == ["llm-gateway"] and d["EnvironmentFile"]
    assert d["Restart"] == ["on-failure"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}.items():
        assert d[key] == [value], key
    assert "/var/lib/llm-gateway" in d["ReadWritePaths"][0]
    assert any("GATEWAY_DATA_DIR=/var/lib/llm-gateway" in env for env in d["Environment"])
    assert d["ExecStart"][0].startswith("/opt/llm-gateway/current/.venv/bin/llm-gateway ")


def test_gateway_unit_stops_after_the_graceful_shutdown_bound() -> None:
    d = directives(UNITS / "llm-gateway.service")
    env = dict(item.split("=", 1) for item in d["Environment"])
    command = d["ExecStart"][0]
    for flag in ("--config", "--host", "--port", "--workers", "--drain-delay", "--shutdown-grace"):
        assert flag in command
    bound = float(env["LLM_GATEWAY_DRAIN_DELAY"]) + float(env["LLM_GATEWAY_SHUTDOWN_GRACE"])
    assert float(d["TimeoutStopSec"][0]) >= bound + 10  # + the audit flush
    assert d["KillMode"] == ["mixed"]  # one SIGTERM to uvicorn's supervisor, which forwards it once


def test_learn_unit_runs_the_learning_worker() -> None:
    assert " learn --config " in directives(UNITS / "llm-gateway-learn.service")["ExecStart"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify() -> None:
    result = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(UNITS.glob("*.service")))],
                            capture_output=True, text=True, timeout=60)
    # The executable lives on the deployed host only; anything else is a real complaint.
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "is not executable" not in line]
    assert not complaints, "\n".join(complaints)
