"""A durable local spool: append-only JSON lines for audit rows the database could not take.

Files in the spool directory (the gateway's data dir), for `name="audit-spool"`:

- `audit-spool.jsonl`: appended to while the database is down. Every `append()` writes whole
  lines, then `flush()` + `os.fsync()` before returning, so an acknowledged row survives a crash.
- `audit-spool.jsonl.replaying`: `replay()` first renames (atomically) the spool to this name,
  so new appends go to a fresh file while it replays. The file is deleted only after every row in
  it was written; if the process dies (or the database fails) mid-replay it stays, and the next
  `replay()` (e.g. on the next start) replays it again from the top. That is safe only because
  the writer is idempotent (rows are keyed by `request_id`): a row can be written twice, never
  lost.
- `audit-spool.dead.jsonl`: lines that cannot be parsed (a line torn by a crash mid-write) and
  rows the database rejected as data errors, with the reason. Kept for a human, never replayed
  and never deleted by the gateway.

A crash in the middle of an append can leave a partial last line; the next append first ends it
with a newline so the torn line cannot swallow the next row (replay then moves it to the dead
file). Thread-safe: appends and rotation share a lock; one replay runs at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    count = 0
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                count += 1
    return count


def _encode(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode(
        "utf-8", "surrogatepass"
    )


class Spool:
    """Append-only JSON-lines spool with crash-safe replay (see the module docstring)."""

    def __init__(self, directory: str | Path, name: str = "audit-spool") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{name}.jsonl"
        self.replaying_path = self.directory / f"{name}.jsonl.replaying"
        self.dead_path = self.directory / f"{name}.dead.jsonl"
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._active = _count_lines(self.path)
        self._replaying = _count_lines(self.replaying_path)
        self._dead = _count_lines(self.dead_path)

    @property
    def depth(self) -> int:
        """Rows waiting to be replayed (in the spool and in an unfinished replay)."""
        return self._active + self._replaying

    @property
    def dead_depth(self) -> int:
        return self._dead

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Durably append `rows` (JSON-safe dicts); returns how many. Raises OSError on failure."""
        data = b"".join(_encode(row) for row in rows)
        if not data:
            return 0
        count = data.count(b"\n")
        with self._lock:
            self._append_bytes(self.path, data)
            self._active += count
        return count

    def append_dead(self, entries: Iterable[dict[str, Any]]) -> int:
        data = b"".join(_encode(entry) for entry in entries)
        if not data:
            return 0
        count = data.count(b"\n")
        with self._lock:
            self._append_bytes(self.dead_path, data)
            self._dead += count
        return count

    def _append_bytes(self, path: Path, data: bytes) -> None:
        created = not path.exists()
        with path.open("a+b") as f:
            if not created and f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    data = b"\n" + data  # end a line torn by a crash mid-append
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if created:
            _fsync_dir(self.directory)

    def replay(self, write: Callable[[list[dict[str, Any]]], None], batch_size: int = 500) -> int:
        """Hand spooled rows to `write` in batches; returns how many were replayed.

        `write` must be idempotent and raise if the rows were not stored; then replay stops and
        the rows stay spooled for the next call. Returns 0 at once if a replay is already running.
        """
        if not self._replay_lock.acquire(blocking=False):
            return 0
        try:
            total = 0
            if self.replaying_path.exists():  # leftover of a replay that died or failed
                total += self._replay_file(write, batch_size)
            with self._lock:
                if not self.path.exists() or self.path.stat().st_size == 0:
                    self._active = 0
                    return total
                os.replace(self.path, self.replaying_path)
                _fsync_dir(self.directory)
                self._replaying, self._active = self._active, 0
            total += self._replay_file(write, batch_size)
            return total
        finally:
            self._replay_lock.release()

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        with self.replaying_path.open("rb") as f:
            yield from enumerate(f, start=1)

    def _replay_file(self, write: Callable[[list[dict[str, Any]]], None], batch_size: int) -> int:
        total = _count_lines(self.replaying_path)
        self._replaying = total
        done = 0
        batch: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        try:
            for number, raw in self._lines():
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                    if not isinstance(row, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    dead.append(
                        {
                            "reason": f"unreadable spool line {number}: {exc}",
                            "line": raw.decode("utf-8", "replace"),
                        }
                    )
                    continue
                batch.append(row)
                if len(batch) >= batch_size:
                    write(batch)
                    done += len(batch)
                    self._replaying = total - done - len(dead)
                    batch = []
            if batch:
                write(batch)
                done += len(batch)
        except BaseException:
            self._replaying = total  # the whole file is replayed again next time
            raise
        if dead:
            log.error("audit spool: %d unreadable line(s) moved to %s", len(dead), self.dead_path)
            self.append_dead(dead)
        self.replaying_path.unlink()
        _fsync_dir(self.directory)
        self._replaying = 0
        return done
