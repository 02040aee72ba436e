"""Gateways pick up a new learned version within seconds, without a restart.

`StatePoller` asks the database every `interval_s` (default 2 s) which learned-state version is
active (one indexed single-row query, in a worker thread, off the request path). When it differs
from what the `StateHolder` serves, it swaps the new state in; `StateHolder.swap` validates
first, so a bad state is refused whole, logged once, kept in `last_error`, and the old one keeps
serving. A rollback (an older version made active) is picked up the same way. A database outage
only delays pickup: the current state keeps serving. For the metrics it also keeps `runs` (when
each learning cycle last recorded a run) and `clamped` (whether the newest thresholds run hit the
drift clamp), refreshed whenever the active version changes.

    poller = StatePoller(engine, holder, interval_s=2.0)
    await poller.start()
    ...
    await poller.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core.learned import StateError
from plugins.state import StateHolder
from store.db import session_factory
from store.queries import get_active_learned_state, list_learned_states

log = logging.getLogger("gateway.state")


class StatePoller:
    def __init__(self, engine: Engine, holder: StateHolder, interval_s: float = 2.0) -> None:
        self.engine = engine
        self.holder = holder
        self.interval_s = interval_s
        self.last_error: str | None = None
        self.swaps = 0
        self._sessions = session_factory(engine)
        self._rejected: int | None = None  # the version refused last (logged once)
        self._db_down = False
        self._seen: int | None = None
        # For the gateway's metrics: when each learning cycle last recorded a run (among the
        # newest 100 versions), and whether the newest thresholds run was clamped.
        self.runs: dict[str, datetime] = {}
        self.clamped: bool | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def version(self) -> int:
        """The learned-state version being served."""
        return self.holder.current.version

    def _fetch(self) -> tuple[int, dict[str, Any]] | None:
        with self._sessions() as session:
            row = get_active_learned_state(session)
            if row is None:
                return None
            if row.version != self._seen:  # something changed: refresh what the metrics show
                self._seen = row.version
                self._read_runs(session)
            return row.version, dict(row.state)

    def _read_runs(self, session: Any) -> None:
        runs: dict[str, datetime] = {}
        clamped: bool | None = None
        for row in list_learned_states(session, limit=100):  # newest first
            if not row.source.startswith("learning:"):
                continue
            cycle = row.source.removeprefix("learning:")
            runs.setdefault(cycle, row.created_at)
            if cycle == "thresholds" and clamped is None:
                clamped = bool((row.reasons or {}).get("clamped"))
        self.runs = runs
        self.clamped = clamped

    async def poll_once(self) -> bool:
        """Check once; True when a new version was swapped in."""
        try:
            active = await asyncio.to_thread(self._fetch)
        except Exception as exc:
            message = f"cannot read the learned state: {type(exc).__name__}"
            if not self._db_down:
                log.warning("%s; version %d keeps serving", message, self.version)
            self._db_down = True
            self.last_error = message
            return False
        if self._db_down:
            self._db_down = False
            self.last_error = None
        if active is None:
            return False
        if active[0] == self.version:
            if self._rejected is not None:  # rolled back to what serves: nothing is refused any more
                self._rejected = self.last_error = None
            return False
        version, data = active
        if version == self._rejected:
            return False
        try:
            self.holder.swap(data, version)
        except StateError as exc:
            self._rejected = version
            self.last_error = f"learned state version {version} rejected: {exc}"
            log.error("%s; version %d keeps serving", self.last_error, self.version)
            return False
        self._rejected = None
        self.last_error = None
        self.swaps += 1
        log.info("learned state version %d loaded", version)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.poll_once()

    async def start(self) -> None:
        """Poll once now (so a gateway starts on the active version), then every `interval_s`."""
        if self._task is not None:
            return
        await self.poll_once()
        self._task = asyncio.create_task(self._loop(), name="learned-state-poller")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
