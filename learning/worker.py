"""The learning worker process: the three cycles on an APScheduler 3 `AsyncIOScheduler`.

Each cycle is an interval job (defaults 6 h, 12 h, 24 h; `LearningConfig`), one instance at a
time, missed runs coalesced. A job runs `runner.run_cycle` in a worker thread; cycles in one
process run one after the other (an asyncio lock), and across processes the runner's
database/Redis/file lock lets one worker act while the others skip and say so.

    worker = LearningWorker(context)
    await worker.start()      # schedules; run_at_start=True also runs every cycle right away
    ...
    await worker.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from learning.cycles import CYCLES
from learning.runner import CycleReport, LearningContext, run_cycle

log = logging.getLogger("gateway.learning")


class LearningWorker:
    def __init__(
        self,
        context: LearningContext,
        *,
        intervals_s: Mapping[str, float] | None = None,
        run_at_start: bool = False,
        keep_reports: int = 100,
    ) -> None:
        self.context = context
        self.intervals_s = dict(intervals_s or context.config.intervals_s())
        unknown = set(self.intervals_s) - set(CYCLES)
        if unknown:
            raise ValueError(f"unknown cycle(s) {sorted(unknown)}; cycles: {', '.join(CYCLES)}")
        self.run_at_start = run_at_start
        self.reports: list[CycleReport] = []
        self._keep = keep_reports
        self._serial: asyncio.Lock | None = None
        self.scheduler: AsyncIOScheduler | None = None

    async def start(self) -> None:
        self._serial = asyncio.Lock()
        scheduler = AsyncIOScheduler(timezone=UTC)
        for cycle in CYCLES:
            seconds = self.intervals_s.get(cycle)
            if not seconds:
                continue
            extra: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if self.run_at_start else {}
            scheduler.add_job(self.run, "interval", seconds=seconds, args=[cycle], id=f"learning:{cycle}",
                              name=f"learning {cycle}", max_instances=1, coalesce=True,
                              misfire_grace_time=max(1, int(seconds)), **extra)
        scheduler.start()
        self.scheduler = scheduler
        log.info("learning worker started: %s", ", ".join(f"{c} every {s / 3600:g} h"
                                                          for c, s in self.intervals_s.items()))

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    async def run(self, cycle: str) -> CycleReport:
        """Run one cycle now (what each scheduled job does)."""
        if self._serial is None:
            self._serial = asyncio.Lock()
        async with self._serial:
            try:
                report = await asyncio.to_thread(run_cycle, self.context, cycle)
            except Exception as exc:  # a failed run must not stop the schedule
                log.exception("learning %s failed", cycle)
                report = CycleReport(cycle, "failed", f"{type(exc).__name__}: {exc}")
        self.reports.append(report)
        del self.reports[: -self._keep]
        log.info("%s", report.render())
        return report

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
