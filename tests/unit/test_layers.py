"""The one-way layers (pyproject.toml's import-linter contracts) catch the cycles they exist for.

`scripts/test` runs `lint-imports` on the tree; here the same contracts run on a copy of the
packages with one forbidden import added, and must break.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "store", "plugins", "learning", "proxy", "fake_upstream")
LINT = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-logo", "--no-cache", "--config", str(tree / "pyproject.toml")],
                          cwd=tree, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{tree}:{ROOT / 'client'}", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("layers")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_tree_keeps_its_layers(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("plugins/base.py", "import proxy.upstream", "Layers"),  # the pipeline reaching into the adapter
        ("learning/runner.py", "import proxy.settings", "Layers"),  # the learner importing the gateway
        ("store/db.py", "import plugins.base", "Layers"),
        ("proxy/deployments.py", "import proxy.settings", "No import cycles"),  # settings <-> deployments
        ("plugins/gate.py", "import starlette.requests", "know no web framework"),
        ("plugins/cascade.py", "import litellm", "Only the adapter"),
        ("proxy/app.py", "import fake_upstream", "test doubles"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tree: Path, module: str, line: str, broken: str) -> None:
    path = tree / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{line}  # injected by the test\n")
        result = lint(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert broken in result.stdout.split("Broken contracts", 1)[-1], result.stdout
