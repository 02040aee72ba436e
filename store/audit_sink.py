"""`AuditSink`: gets audit records off the hot path and into the database, or a durable spool.

    sink = AuditSink(engine, Spool(data_dir), store_content="review_only")
    await sink.start()
    sink.submit(record)        # per request: O(1), never raises, never awaits the database
    await sink.stop()          # on shutdown: everything queued reaches the database or the spool

How records flow:

- `submit()` appends to a bounded in-memory queue (a deque; call it from the event loop thread).
- A writer task takes batches of up to `batch_size` records, or whatever arrived within
  `flush_interval_s` of the first one, and in worker threads prepares the rows (content policy,
  redaction, hashes: `store.redact.prepare_row`) and writes them in one transaction
  (`store.writer.AuditWriter`: idempotent by `request_id`; review items for `pending_review`
  rows in the same transaction). A write is bounded by `write_timeout_s`.
- If the write fails as an outage (down, refused, locked, or slower than the timeout), the batch
  is appended to the spool (fsync'd JSON lines) and the sink marks the database down: while it
  is down, batches go straight to the spool, so a hanging database cannot back the queue up.
- A replay task wakes every `replay_interval_s` (and once at start, for leftovers of an earlier
  run): when the spool is not empty or the database is marked down, it probes the database,
  replays the spool (`Spool.replay`: rotate, write idempotently, then delete) and marks the
  database up again.
- Queue full: `submit()` prepares the row and appends it to the spool *synchronously*, on the
  event loop (an fsync: slow, but only under overload or after `stop()`). This is the one
  fallback that blocks; nothing is ever dropped. If even the spool fails (disk full), the record
  stays queued in memory past the bound, and the error is logged.
- Rows the database rejects as data (constraint/data errors) go, with the reason, to the spool's
  dead-letter file instead of being retried forever.

A write that timed out may still commit later in its (abandoned) thread; the spooled copy of the
batch is then skipped on replay by `request_id`, so every record lands exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from core.records import AuditRecord, row_from_json, row_to_json
from store.redact import CONTENT_POLICIES, ContentPolicy, prepare_row
from store.spool import Spool
from store.writer import AuditWriter, describe

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SinkStats:
    """Counters since start (for metrics and tests)."""

    submitted: int = 0
    written: int = 0  # rows in batches the database accepted (duplicates included)
    batches: int = 0  # transactions that wrote live batches
    spooled: int = 0  # rows appended to the spool by the writer
    overflowed: int = 0  # rows submit() spooled itself (queue full or sink stopped)
    replayed: int = 0  # rows replayed from the spool into the database
    dead: int = 0  # rows the database rejected as data (in the dead-letter file)
    db_failures: int = 0  # failed live writes and probes


class AuditSink:
    """Batched, non-blocking audit writer with a durable spool (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        spool: Spool,
        *,
        store_content: ContentPolicy = "review_only",
        batch_size: int = 100,
        flush_interval_s: float = 0.2,
        max_queue: int = 10_000,
        write_timeout_s: float = 5.0,
        replay_interval_s: float = 5.0,
        replay_batch_size: int = 500,
    ) -> None:
        if store_content not in CONTENT_POLICIES:
            raise ValueError(f"store_content must be one of {CONTENT_POLICIES}, not {store_content!r}")
        self._writer = AuditWriter(engine, statement_timeout_ms=int(write_timeout_s * 1000))
        self._spool = spool
        self._policy: ContentPolicy = store_content
        self._batch_size = max(1, batch_size)
        self._flush_interval = flush_interval_s
        self._max_queue = max(1, max_queue)
        self._write_timeout = write_timeout_s
        self._replay_interval = replay_interval_s
        self._replay_batch_size = replay_batch_size
        self._items: deque[AuditRecord] = deque()
        self._inflight = 0
        self._has_items = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._stopping = False
        self._closed = False
        self._db_ok = True
        self._last_error = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._db_pool: ThreadPoolExecutor | None = None
        self._io_pool: ThreadPoolExecutor | None = None
        self.stats = SinkStats()

    # -- public surface -------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Records in memory: queued plus the batch being written."""
        return len(self._items) + self._inflight

    @property
    def spool_depth(self) -> int:
        return self._spool.depth

    @property
    def db_ok(self) -> bool:
        """False from a failed write until a probe and a spool replay succeed."""
        return self._db_ok

    async def start(self) -> None:
        if self._tasks:
            return
        self._db_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="audit-db")
        self._io_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-io")
        self._stopping = self._closed = False
        self._stop_event.clear()
        self._tasks = [
            asyncio.create_task(self._run_writer(), name="audit-writer"),
            asyncio.create_task(self._run_replayer(), name="audit-replay"),
        ]

    def submit(self, record: AuditRecord) -> None:
        """Queue `record` for writing. O(1); never raises; never waits for the database."""
        try:
            self.stats.submitted += 1
            if self._closed or len(self._items) >= self._max_queue:
                self._overflow(record)
                return
            self._items.append(record)
            depth = len(self._items)
            if depth == 1:
                self._has_items.set()
            if depth >= self._batch_size:
                self._batch_full.set()
        except Exception:  # never let auditing break a request
            log.exception("audit submit failed for request %s", getattr(record, "request_id", "?"))

    async def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (to the database, or to the spool when it
        is down). True when it was; False when `timeout_s` passed first. For tests and shutdown."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._items or self._inflight:
            if not self._tasks or loop.time() > deadline:
                return False
            self._has_items.set()  # wake the writer now instead of at the next flush interval
            self._batch_full.set()
            await asyncio.sleep(0.005)
        return True

    async def stop(self) -> None:
        """Flush everything queued to the database (or the spool if it is down), then stop."""
        if not self._tasks and self._items and not self._closed:
            await self.start()  # submitted before start(): write them the normal way
        self._stopping = True
        self._stop_event.set()
        self._has_items.set()
        self._batch_full.set()
        if self._tasks:
            writer, *others = self._tasks
            for task in others:
                task.cancel()
            for task in others:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await writer
        self._tasks = []
        self._closed = True
        if self._items:  # never started, or the spool failed during the final flush
            await self._flush_remaining()
        if self._io_pool is not None:
            self._io_pool.shutdown(wait=True)
        if self._db_pool is not None:
            self._db_pool.shutdown(wait=False)  # an abandoned (timed-out) write may still run
        self._io_pool = self._db_pool = None

    # -- writer ---------------------------------------------------------------------------------

    async def _run_writer(self) -> None:
        while True:
            try:
                if not self._items:
                    if self._stopping:
                        return
                    self._has_items.clear()
                    await self._has_items.wait()
                    continue
                if len(self._items) < self._batch_size and not self._stopping:
                    self._batch_full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._batch_full.wait(), self._flush_interval)
                count = min(len(self._items), self._batch_size)
                batch = [self._items.popleft() for _ in range(count)]
                self._inflight = count
                try:
                    done = await self._write_batch(batch)
                except Exception:
                    log.exception("audit writer error")
                    done = False
                finally:
                    self._inflight = 0
                if not done:  # neither database nor spool took them: keep them, retry later
                    self._items.extendleft(reversed(batch))
                    if self._stopping:
                        return  # stop() makes a last, synchronous attempt at the spool
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - defensive: the loop must survive anything
                log.exception("audit writer loop error")
                await asyncio.sleep(0.1)

    async def _write_batch(self, batch: Sequence[AuditRecord]) -> bool:
        """Write `batch` to the database or the spool; False only if both failed."""
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._io_pool, self._prepare, batch)
        if not rows:
            return True
        if self._db_ok:
            try:
                dead = await asyncio.wait_for(
                    loop.run_in_executor(self._db_pool, self._writer.write, rows), self._write_timeout
                )
            except Exception as exc:
                self._mark_down(exc)
            else:
                self.stats.batches += 1
                self.stats.written += len(rows) - len(dead)
                if dead:
                    await self._append_dead(dead)
                return True
        try:
            await loop.run_in_executor(self._io_pool, self._spool.append, [row_to_json(r) for r in rows])
        except Exception:
            log.exception("audit spool append failed; %d record(s) kept in memory", len(rows))
            return False
        self.stats.spooled += len(rows)
        return True

    def _prepare(self, batch: Sequence[AuditRecord]) -> list[dict[str, Any]]:
        rows = (self._prepare_one(record) for record in batch)
        return [row for row in rows if row is not None]

    def _prepare_one(self, record: AuditRecord) -> dict[str, Any] | None:
        """The row for `record`; a record that cannot become a row (a pipeline bug: wrong types)
        goes to the dead-letter file, without its prompt/output, rather than failing its batch."""
        try:
            return prepare_row(record, self._policy)
        except Exception as exc:
            log.error("audit record %r is malformed: %s", getattr(record, "request_id", "?"), describe(exc))
            fields = {
                name: repr(getattr(record, name, None))
                for name in getattr(record, "__dataclass_fields__", {})
                if name not in ("prompt", "output")
            }
            try:
                self._spool.append_dead([{"reason": describe(exc), "record": fields}])
            except Exception:
                log.exception("audit dead-letter append failed")
            self.stats.dead += 1
            return None

    async def _append_dead(self, dead: list[dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._io_pool, self._spool.append_dead, dead)
        except Exception:
            log.exception("audit dead-letter append failed for %d row(s)", len(dead))
        self.stats.dead += len(dead)

    def _mark_down(self, exc: BaseException, what: str = "write") -> None:
        """Divert writes to the spool; log on the transition and whenever the error changes."""
        self.stats.db_failures += 1
        reason = "timeout" if isinstance(exc, TimeoutError) else describe(exc)
        if self._db_ok or reason != self._last_error:
            log.warning("audit database %s failed (%s); spooling to %s", what, reason, self._spool.path)
        self._last_error = reason
        self._db_ok = False

    def _overflow(self, record: AuditRecord) -> None:
        """Queue full or sink stopped: spool synchronously (documented blocking fallback)."""
        row = self._prepare_one(record)
        if row is None:
            return
        try:
            self._spool.append([row_to_json(row)])
            self.stats.overflowed += 1
        except Exception:
            log.exception("audit spool append failed; record %s kept in memory", record.request_id)
            self._items.append(record)

    async def _flush_remaining(self) -> None:
        batch = list(self._items)
        self._items.clear()
        for record in batch:
            self._overflow(record)

    # -- replay ---------------------------------------------------------------------------------

    async def _run_replayer(self) -> None:
        while not self._stopping:
            if self._spool.depth > 0 or not self._db_ok:
                await self._recover()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), self._replay_interval)

    async def _recover(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            probe = loop.run_in_executor(self._db_pool, self._writer.probe)
            await asyncio.wait_for(probe, self._write_timeout)
        except Exception as exc:
            self._mark_down(exc, "probe")
            return
        if self._spool.depth > 0:
            try:
                replayed = await loop.run_in_executor(
                    self._db_pool, self._spool.replay, self._replay_write, self._replay_batch_size
                )
            except Exception as exc:
                self._mark_down(exc, "spool replay")
                return
            self.stats.replayed += replayed
            if replayed:
                log.info("audit spool: replayed %d record(s) into the database", replayed)
        if not self._db_ok:
            log.info("audit database reachable again")
            self._db_ok = True
            self._last_error = ""

    def _replay_write(self, rows: list[dict[str, Any]]) -> None:
        """Runs in a db thread, inside `Spool.replay`."""
        dead = self._writer.write([row_from_json(row) for row in rows])
        if dead:
            self._spool.append_dead(dead)
            self.stats.dead += len(dead)
