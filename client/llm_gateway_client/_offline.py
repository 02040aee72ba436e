"""Calls answered offline, kept on disk until the gateway's audit log has them.

Every call the local model answers is appended to `<state_dir>/offline.jsonl` (one JSON object a
line, flushed and fsynced before the answer is returned), so a crash loses nothing. Once the
gateway is reachable again the client uploads the records to `POST /v1/audit/offline`:

1. rotate: `offline.jsonl` is renamed to `offline-<time>-<pid>-<rand>.upload.jsonl` (new offline
   calls go to a fresh `offline.jsonl` meanwhile);
2. every `*.upload.jsonl` (including ones left by a crash) is sent in batches of at most 500
   records and ~1 MiB; a batch the gateway finds too large (413) is halved, and a single record
   still too large is sent with its prompt and output cut to 8 KiB each (the row is what matters);
3. a file is deleted once every batch was accepted. Records the gateway refuses for good
   (400/413/422) are kept aside in `offline-*.rejected.jsonl` for a human, not retried forever.

The gateway ignores a `request_id` it already has, so uploading a file twice (a crash between
2 and 3, two processes sharing the directory) is harmless. Appends and rotations hold an
exclusive `flock` on `offline.lock` where the platform has one, so processes sharing the
directory do not lose records either. The files hold prompts and answers: the directory is
created private (0700) and the files 0600.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: in-process locking only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("llm_gateway_client")

MAX_BATCH = 500  # the gateway's limit per upload request
MAX_BATCH_BYTES = 1 << 20  # well under the gateway's default body limit (4 MiB)
SHRUNK_TEXT = 8192
ACTIVE = "offline.jsonl"
ROTATED_GLOB = "offline-*.upload.jsonl"
REQUIRED = ("request_id", "created_at")


def new_request_id() -> str:
    return "offline-" + secrets.token_hex(12)


def offline_record(
    request_id: str, task_type: str, model: str, prompt: str, output: str, latency_ms: float,
    tokens_in: int, tokens_out: int,
) -> dict[str, Any]:
    """The record `POST /v1/audit/offline` takes, for one call answered by the local model."""
    return {
        "request_id": request_id,
        "created_at": datetime.now(UTC).isoformat(),
        "task_type": task_type,
        "model": model,
        "prompt": prompt,
        "output": output,
        "latency_ms": round(max(0.0, latency_ms), 1),
        "tokens_in": max(0, int(tokens_in)),
        "tokens_out": max(0, int(tokens_out)),
    }


def batches(
    records: list[dict[str, Any]], size: int = MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[dict[str, Any]]]:
    """Consecutive batches of at most `size` records and (one oversized record aside) `max_bytes`."""
    out: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    used = 0
    for record in records:
        cost = len(json.dumps(record, ensure_ascii=False)) + 2
        if batch and (len(batch) >= size or used + cost > max_bytes):
            out.append(batch)
            batch, used = [], 0
        batch.append(record)
        used += cost
    if batch:
        out.append(batch)
    return out


def shrink(record: dict[str, Any]) -> dict[str, Any] | None:
    """`record` with prompt and output cut to SHRUNK_TEXT characters; None when nothing was cut."""
    cut = dict(record)
    for key in ("prompt", "output"):
        text = cut.get(key)
        if isinstance(text, str) and len(text) > SHRUNK_TEXT:
            cut[key] = text[:SHRUNK_TEXT] + f" [cut by llm-gateway-client: {len(text)} characters]"
    return cut if cut != record else None


class OfflineStore:
    """The local record of offline calls, and who may upload it now (one upload at a time)."""

    def __init__(self, state_dir: Path, clock: Callable[[], float], retry_interval: float) -> None:
        self.dir = state_dir
        self.path = state_dir / ACTIVE
        self._clock = clock
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._uploading = False
        self._retry_at = float("-inf")
        self._pending = self.path.exists() or any(state_dir.glob(ROTATED_GLOB))

    # -- writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if fcntl is None:
                yield
                return
            fd = os.open(self.dir / "offline.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def append(self, record: dict[str, Any]) -> None:
        """Add one record durably (written, flushed and fsynced before this returns)."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._exclusive():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._pending = True

    # -- uploading -------------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Records may be waiting (in this process's knowledge; checked on disk at start)."""
        return self._pending

    def begin_upload(self) -> bool:
        """Claim the upload: False when nothing is pending, another upload runs, or one just failed."""
        with self._lock:
            if not self._pending or self._uploading or self._clock() < self._retry_at:
                return False
            self._uploading = True
            return True

    def end_upload(self, ok: bool) -> None:
        with self._lock:
            self._uploading = False
            if not ok:  # try again after the interval, not on every call
                self._retry_at = self._clock() + self._retry_interval

    def take(self) -> list[tuple[Path, list[dict[str, Any]]]]:
        """Rotate the active file, then read every rotated file: [(file, its records)], oldest first."""
        with self._exclusive():
            if self.path.exists():
                if self.path.stat().st_size > 0:
                    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                    self.path.rename(self.dir / f"offline-{stamp}-{os.getpid()}-{secrets.token_hex(2)}.upload.jsonl")
                    _fsync_dir(self.dir)
                else:
                    self.path.unlink()
            files = sorted(self.dir.glob(ROTATED_GLOB))
            self._pending = bool(files)
        return [(file, _read(file)) for file in files]

    def uploaded(self, file: Path, rejected: list[dict[str, Any]]) -> Path | None:
        """`file` is done: delete it, keeping the records the gateway refused for good aside (for a
        human, out of the upload). Returns the file they were kept in, if any."""
        kept = None
        with self._exclusive():
            if rejected:
                kept = file.with_name(file.name.replace(".upload.jsonl", ".rejected.jsonl"))
                text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rejected)
                fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, text.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
            file.unlink(missing_ok=True)
            self._pending = self.path.exists() or any(self.dir.glob(ROTATED_GLOB))
        return kept

    def count(self) -> int:
        """Records waiting on disk (active and rotated files)."""
        files = [self.path, *self.dir.glob(ROTATED_GLOB)] if self.dir.exists() else []
        return sum(len(_read(file)) for file in files if file.exists())


def _read(file: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:  # another process uploaded and deleted it meanwhile
        return records
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:  # a line torn by a crash mid-write: it never got an answer back either
            log.warning("skipping unreadable line %d of %s", number, file)
            continue
        if isinstance(record, dict) and all(record.get(key) for key in REQUIRED):
            records.append(record)
    return records


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
