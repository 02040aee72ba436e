"""The agents' own CLIs (Codex, Claude Code) for end-to-end tests, installed from npm on first use.

Resolution order: an explicit `CODEX_BIN` / `CLAUDE_BIN`, the PATH, then a pinned install in
`.cache/agent-clis/` (made here with npm when npm is available). Only a machine without npm, or
whose npm cannot install the package, skips the test, and the skip says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "agent-clis"
PACKAGES = {
    "codex": ("CODEX_BIN", "@openai/codex@0.171.0"),
    "claude": ("CLAUDE_BIN", "@anthropic-ai/claude-code@2.1.332"),
}


def agent_cli(name: str) -> str:
    env_var, package = PACKAGES[name]
    explicit = os.environ.get(env_var) or shutil.which(name)
    if explicit:
        return explicit
    installed = CACHE / "node_modules" / ".bin" / name
    if installed.exists():
        return str(installed)
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not available to install {package} (or set {env_var})")
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", package],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not installed.exists():
        pytest.skip(f"npm could not install {package}: {result.stderr.strip()[-300:]}")
    return str(installed)
