"""The rendered overlay, `config/learned.yaml`: the active learned state as a human-readable file.

The database is the source of truth (gateways poll it, `proxy.state_poller`); the file is for
people and deploy tooling: what is serving now, which version, from which cycle. It is written
atomically (a temp file in the same directory, fsync, `os.replace`), so a reader never sees half
a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

HEADER = (
    "# Written by the llm-gateway learning worker. Do not edit: the next cycle overwrites it.\n"
    "# The database (learned_state) is the source of truth; roll back with `llm-gateway learn rollback N`.\n"
)


def render_overlay(version: int, source: str, created_at: datetime | None, state: dict[str, Any]) -> str:
    body = {
        "version": version,
        "source": source,
        "created_at": created_at.isoformat() if created_at else None,
        "thresholds": dict(state.get("thresholds") or {}),
        "assignments": dict(sorted((state.get("assignments") or {}).items())),
        "weights": dict(sorted((state.get("weights") or {}).items())),
        "exploration": dict(sorted((state.get("exploration") or {}).items())),
    }
    return HEADER + yaml.safe_dump({"learned": body}, sort_keys=False, default_flow_style=False)


def write_atomic(path: str | Path, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable (not possible everywhere)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def write_overlay(path: str | Path, version: int, source: str, created_at: datetime | None,
                  state: dict[str, Any]) -> Path:
    return write_atomic(path, render_overlay(version, source, created_at, state))
