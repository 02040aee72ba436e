"""`llm-gateway keys create|list|revoke` as a user runs it (a subprocess), against a SQLite config,
and the keys it makes working (and then not working) against a real gateway on that database."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxy.keys_cli import register
from tests.support.servers import ENV, GatewayServer, base_config

REPO = Path(__file__).resolve().parents[2]


def keys(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV}
    return subprocess.run([sys.executable, "-m", "proxy.cli", "keys", *args, "--config", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def setup(fake: Any, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    config = base_config(fake.url, data_dir=str(tmp_path / "data"))
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def status(server: GatewayServer, path: str, key: str) -> int:
    return httpx.get(server.url + path, headers={"authorization": f"Bearer {key}"}, timeout=10).status_code


def test_created_keys_authenticate_and_revoked_ones_do_not(
    setup: tuple[Path, dict[str, Any]], make_gateway: Callable[..., GatewayServer], tmp_path: Path
) -> None:
    path, config = setup
    created = ok(keys(path, "create", "ci-bot", "--role", "agent"))
    lines = created.splitlines()
    agent_key = next(line for line in lines if line.startswith("gwk_"))
    assert "ci-bot" in created and "agent" in created and f"prefix {agent_key[:8]}" in created
    admin = json.loads(ok(keys(path, "create", "ops", "--role", "admin", "--json")))
    assert admin["name"] == "ops" and admin["role"] == "admin" and admin["key"].startswith(admin["prefix"])

    taken = keys(path, "create", "ci-bot")
    assert taken.returncode == 1 and "already exists" in taken.stderr

    table = ok(keys(path, "list"))
    assert agent_key not in table and admin["key"] not in table  # never shown again
    header, *rows = [line.split() for line in table.splitlines()]
    assert header == ["NAME", "ROLE", "PREFIX", "CREATED", "REVOKED"]
    assert [row[:3] + row[4:] for row in rows] == [["ci-bot", "agent", agent_key[:8], "-"],
                                                   ["ops", "admin", admin["prefix"], "-"]]
    with sqlite3.connect(tmp_path / "data" / "gateway.db") as db:
        stored = " ".join(str(v) for row in db.execute("SELECT * FROM api_keys") for v in row)
    assert agent_key not in stored and admin["key"] not in stored  # only hashes and prefixes

    server = make_gateway(config)
    assert status(server, "/v1/models", agent_key) == 200
    assert status(server, "/v1/review", agent_key) == 403  # an agent key, from the database
    assert status(server, "/v1/review", admin["key"]) == 200  # an admin key, from the database

    revoked = ok(keys(path, "revoke", "ci-bot"))
    assert "revoked" in revoked and agent_key[:8] in revoked
    listed = {row["name"]: row for row in json.loads(ok(keys(path, "list", "--json")))}
    assert listed["ci-bot"]["revoked"] and listed["ops"]["revoked"] is None and listed["ops"]["created"]
    missing = keys(path, "revoke", "nobody")
    assert missing.returncode == 1 and "nobody" in missing.stderr

    # A running gateway may serve a revoked key until its key cache expires (30 s); a fresh one
    # (or the same one after that) refuses it at once.
    fresh = make_gateway(config)
    assert status(fresh, "/v1/models", agent_key) == 401
    assert status(fresh, "/v1/models", admin["key"]) == 200


def run_in_process(*argv: str) -> int:
    """The `keys` commands without a subprocess (argument and config errors need no database)."""
    parser = argparse.ArgumentParser(prog="llm-gateway")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.func(args))


def test_bad_arguments_and_config(setup: tuple[Path, dict[str, Any]], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path, _config = setup
    assert run_in_process("keys", "create", "x", "--role", "root", "--config", str(path)) == 2  # not a role
    assert run_in_process("keys", "list", "--config", str(tmp_path / "missing.yaml")) == 2
    assert "cannot read config file" in capsys.readouterr().err
    assert run_in_process("keys", "create", "", "--config", str(path)) == 1
    assert "name is required" in capsys.readouterr().err
    assert run_in_process("keys", "list", "--config", str(path)) == 0  # a fresh database: created, migrated
    assert capsys.readouterr().out.strip() == "no keys"
