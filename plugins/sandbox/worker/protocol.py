"""The worker's side of its pipe to the gateway: JSON lines out, one JSON job in.

Every line the worker writes is one JSON object (`runner._parse` reads them back):

* P0, once isolated and before any job: `{"ready": true, "isolation": {...}}`, or
  `{"refused": "why"}` and it exits;
* P1, while it runs the job: `{"started": true}`, `{"loaded": {"errors": [...]}}`, one
  `{"case": id, ...}` per case as it finishes, `{"end": true}`; or `{"harness_error": "..."}`;
* P0, last: `{"exit": {...}}`, how P1 ended.

The job is one JSON line on stdin (at most `MAX_JOB_BYTES`). P1 writes through its own copy of
the pipe, moved to a descriptor at or above `RESULT_FD_MIN` so that pointing fds 0-2 at /dev/null
leaves it alone.
"""

from __future__ import annotations

import json
import os
from typing import Any

RESULT_FD_MIN = 10
MAX_JOB_BYTES = 8 * 1024 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def emit(fd: int, obj: dict[str, Any]) -> None:
    _write_all(fd, (json.dumps(obj, separators=(",", ":"), default=str) + "\n").encode("utf-8", "replace"))


def read_job(limit: int) -> dict[str, Any] | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError("job too large")
        if chunk.endswith(b"\n"):
            break
    data = b"".join(chunks)
    if not data.strip():
        return None
    job: dict[str, Any] = json.loads(data)
    return job
