"""scripts/deploy.sh and scripts/rollback.sh end to end, against a local target (DEPLOY_HOST=local).

A temporary git repository holds this working tree; a temporary directory stands in for the host.
The "services" are one gateway process that the restart command (a small script, standing in for
`systemctl restart`) stops and starts from `current`, on a fixed port, with a config pointing at
the fake upstream. The release venvs reuse this checkout's venv (--venv-from): no pip, no network.

The steps run in order and share the target:
  1. a good commit deploys, becomes current, and serves;
  2. a commit that cannot start is rolled back by itself: the previous release serves again;
  3. a commit that fails before the switch (broken import) changes nothing, not even a restart;
  4. another good commit deploys (the first becomes `previous`);
  5. scripts/rollback.sh goes back to the previous release (and refuses what it cannot do).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.ops.support import ROOT, free_port, process_env
from tests.support.servers import base_config

RESTART = """#!/usr/bin/env bash
# Stands in for `systemctl restart llm-gateway`: stop the running gateway, start current's.
set -u
pidfile={state}/gateway.pid
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$pidfile"
fi
echo "$DEPLOY_RELEASE" >> {state}/restarts
cd "$DEPLOY_PATH/current"
setsid "$DEPLOY_PATH/current/.venv/bin/llm-gateway" serve --config {config} --port {port} \\
  --drain-delay 0 --shutdown-grace 2 >> {state}/gateway.log 2>&1 < /dev/null &
echo $! > "$pidfile"
"""
BROKEN_START = '''

def _serve(args):  # this release is broken on purpose: `serve` exits at once
    raise SystemExit("this release cannot start")
'''


@dataclass
class Target:
    repo: Path
    path: Path
    state: Path
    port: int
    env: dict[str, str]
    releases: dict[str, str] = field(default_factory=dict)  # step -> release name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=ops-test", "-c", "user.email=ops@test", *args],
                              cwd=self.repo, check=True, capture_output=True, text=True).stdout.strip()

    def commit(self, message: str, path: str, append: str) -> str:
        with (self.repo / path).open("a") as file:
            file.write(append)
        self.git("commit", "-qam", message)
        return self.git("rev-parse", "HEAD")

    def run(self, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(self.repo / "scripts" / script), *args], cwd=self.repo, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def current(self) -> str:
        link = self.path / "current"
        return os.path.basename(os.readlink(link)) if link.is_symlink() else ""

    def previous(self) -> str:
        link = self.path / "previous"
        return os.path.basename(os.readlink(link)) if link.is_symlink() else ""

    def pid(self) -> int:
        return int((self.state / "gateway.pid").read_text())

    def serving(self) -> str:
        """The release the running gateway process was started from (its working directory)."""
        return os.path.basename(os.readlink(f"/proc/{self.pid()}/cwd"))

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _copy_worktree(destination: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


@pytest.fixture(scope="module")
def target(fake: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("deploy")
    repo, path, state = base / "repo", base / "host" / "llm-gateway", base / "state"
    for directory in (repo, path, state):
        directory.mkdir(parents=True)
    _copy_worktree(repo)
    port = free_port()
    config = state / "gateway.yaml"
    config.write_text(yaml.safe_dump(base_config(fake.url, data_dir=str(state / "data"))))
    restart = state / "restart.sh"
    restart.write_text(RESTART.format(state=state, config=config, port=port))
    restart.chmod(0o755)
    env = process_env()
    env.pop("PYTHONPATH")  # the release's code, not this checkout's
    env.update(DEPLOY_HOST="local", DEPLOY_PATH=str(path), DEPLOY_CONFIG=str(config),
               DEPLOY_ENV_FILE=str(state / "none.env"), DEPLOY_VENV_FROM=str(Path(sys.prefix)),
               DEPLOY_RESTART_CMD=str(restart), DEPLOY_STATUS_CMD=f'kill -0 "$(cat {state}/gateway.pid)"',
               DEPLOY_HEALTH_URL=f"http://127.0.0.1:{port}/health/ready", DEPLOY_HEALTH_TIMEOUT="45")
    result = Target(repo, path, state, port, env)
    result.git("init", "-q")
    result.git("add", "-A")
    result.git("commit", "-qm", "release one")
    yield result
    pidfile = state / "gateway.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def _explain(result: subprocess.CompletedProcess[str], target: Target) -> str:
    log = (target.state / "gateway.log").read_text()[-3000:] if (target.state / "gateway.log").exists() else ""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n--- gateway log\n{log}"


def test_1_a_good_release_deploys_and_serves(target: Target) -> None:
    sha = target.git("rev-parse", "HEAD")
    result = target.run("deploy.sh", "--skip-tests")
    assert result.returncode == 0, _explain(result, target)
    name = target.current()
    assert name.endswith("-" + sha[:12]) and name[:8].isdigit()
    release = target.path / "releases" / name
    assert f"commit={sha}" in (release / "RELEASE").read_text()
    assert (release / ".venv" / "bin" / "llm-gateway").exists()
    assert target.ready() and target.serving() == name
    assert (target.state / "data" / "gateway.db").exists()  # migrated
    for line in ("==> deployed", f"release:  {name} ({sha})", "services:", "llm-gateway verify"):
        assert line in result.stdout, result.stdout
    target.releases["one"] = name


def test_2_a_release_that_cannot_start_is_rolled_back(target: Target) -> None:
    one = target.releases["one"]
    target.commit("release two: cannot start", "proxy/cli.py", BROKEN_START)
    result = target.run("deploy.sh", "--skip-tests")
    assert result.returncode == 2, _explain(result, target)
    assert "ROLLING BACK" in result.stdout and f"rolled back: {one} serves again" in result.stdout
    assert target.current() == one and target.previous() == ""
    assert target.ready() and target.serving() == one
    history = (target.path / "history").read_text()
    assert "unhealthy" in history and f"rollback {one} automatic" in history
    target.git("revert", "--no-edit", "HEAD")


def test_3_a_release_failing_before_the_switch_changes_nothing(target: Target) -> None:
    one, pid = target.releases["one"], target.pid()
    before = sorted(p.name for p in (target.path / "releases").iterdir())
    target.commit("release three: broken import", "proxy/settings.py", "\nimport no_such_module_xyz\n")
    result = target.run("deploy.sh", "--skip-tests")
    assert result.returncode == 1, _explain(result, target)
    assert "nothing changed" in result.stderr + result.stdout
    assert target.current() == one and target.pid() == pid and target.ready()
    assert sorted(p.name for p in (target.path / "releases").iterdir()) == before  # no half release left
    target.git("revert", "--no-edit", "HEAD")


def test_deploy_refuses_a_dirty_tree(target: Target) -> None:
    (target.repo / "README.md").write_text("uncommitted\n")
    try:
        result = target.run("deploy.sh", "--skip-tests")
        assert result.returncode == 1 and "uncommitted changes" in result.stderr
    finally:
        target.git("checkout", "--", "README.md")


def test_4_another_good_release_makes_the_first_previous(target: Target) -> None:
    target.commit("release four", "README.md", "\nrelease four\n")
    result = target.run("deploy.sh", "--skip-tests")
    assert result.returncode == 0, _explain(result, target)
    four = target.current()
    assert four != target.releases["one"] and target.previous() == target.releases["one"]
    assert target.serving() == four and target.ready()
    target.releases["four"] = four


def test_5_rollback_on_demand(target: Target) -> None:
    one, four = target.releases["one"], target.releases["four"]
    result = target.run("rollback.sh")
    assert result.returncode == 0, _explain(result, target)
    assert target.current() == one and target.previous() == four
    assert target.ready() and target.serving() == one

    listing = target.run("rollback.sh", "--list")
    assert listing.returncode == 0
    assert f"{one}  <- current" in listing.stdout and f"{four}  <- previous" in listing.stdout

    refused = target.run("rollback.sh", one)
    assert refused.returncode == 1 and "already current" in refused.stderr
    missing = target.run("rollback.sh", "20000101T000000Z-nosuchrelease")
    assert missing.returncode == 1 and "not installed" in missing.stderr
    assert target.current() == one and target.serving() == one  # refusals change nothing
    history = (target.path / "history").read_text()
    assert f"rollback {one} manual (from {four})" in history


FAKE_SSH = """#!/usr/bin/env bash
# Stands in for ssh: records the destination, drops the options, runs the command in a local shell.
while [ $# -gt 0 ]; do
  case "$1" in -o|-p|-i) shift 2 ;; -*) shift ;; *) break ;; esac
done
echo "$1" >> {log}
[ "$1" != "deploy@unreachable.example" ] || exit 255
shift
exec bash -c "$*"
"""


def test_6_the_ssh_transport(target: Target) -> None:
    bin_dir = target.state / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH.format(log=target.state / "ssh.log"))
    (bin_dir / "ssh").chmod(0o755)
    env = dict(target.env, PATH=f"{bin_dir}:{target.env['PATH']}", DEPLOY_HOST="gw1.example", DEPLOY_USER="deploy")
    listing = subprocess.run(["bash", str(target.repo / "scripts" / "rollback.sh"), "--list", "--ssh-port", "2222"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert f"{target.releases['one']}  <- current" in listing.stdout  # the settings survived the remote shell
    assert set((target.state / "ssh.log").read_text().split()) == {"deploy@gw1.example"}

    env["DEPLOY_HOST"] = "unreachable.example"
    result = subprocess.run(["bash", str(target.repo / "scripts" / "deploy.sh"), "--skip-tests"], cwd=target.repo,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "cannot reach deploy@unreachable.example" in result.stderr
