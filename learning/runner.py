"""One run of one cycle, end to end (blocking: the worker runs it in a thread).

    lock -> read the active state and the data window -> compute (pure cycle) -> merge into the
    active state -> validate (plugins.state.validate_state; invalid: rejected whole) -> save a
    new active version (source `learning:<cycle>`, reasons and sample counts) -> render the overlay

A run that cannot get the lock skips and says so; a dry run takes no lock and writes nothing.
A run that changes nothing is still recorded as a version with the same values and its notes
(`record_unchanged_runs`, default on): the versions table is the run log, so `learn history`,
the gateway's "last successful run" metric and `llm-gateway verify` see a quiet learner alive.
`LearningContext.from_settings` builds what a run needs from the gateway's own settings, so the
worker reads the same tiers, validators and config defaults as the gateways it tunes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.learned import LearnedState, StateError
from learning.config import LearningConfig, from_settings
from learning.cycles import CYCLES, assignments_cycle, thresholds_cycle, validators_cycle
from learning.data import load_samples, load_threshold_history
from learning.locks import Lock, held, lock_factory
from learning.overlay import write_overlay
from learning.types import CycleResult, ThresholdPoint
from plugins.state import validate_state
from plugins.validators import Scorer
from store.db import make_engine, session_factory
from store.queries import get_active_learned_state, save_learned_state

log = logging.getLogger("gateway.learning")


@dataclass
class LearningContext:
    """Everything a run needs; built once per process."""

    engine: Engine
    tiers: list[str]
    scorer: Scorer
    initial: LearnedState  # version 0: the config's values, before any learned version
    config: LearningConfig
    new_lock: Callable[[], Lock]
    overlay_path: Path | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        config: LearningConfig | None = None,
        engine: Engine | None = None,
        overlay_path: str | Path | None = None,
    ) -> LearningContext:
        from core.learned import Thresholds
        from plugins.state import initial_state
        from plugins.tasks import build_task_types
        from plugins.validators import build_validators

        config = config or from_settings(settings)
        engine = engine or make_engine(settings.resolved_database_url)
        scorer = Scorer(build_validators(settings.quality.validators), settings.quality.weights)
        thresholds = Thresholds(settings.quality.thresholds.review, settings.quality.thresholds.approved)
        initial = initial_state(thresholds, build_task_types(settings.task_types, list(settings.tiers)), scorer).state
        overlay = Path(overlay_path) if overlay_path is not None else Path(config.overlay_path)
        new_lock = lock_factory(engine, settings.redis_url, settings.data_dir, ttl_s=config.lock_ttl_s)
        return cls(engine, list(settings.tiers), scorer, initial, config, new_lock, overlay)

    def session(self) -> Session:
        return session_factory(self.engine)()


@dataclass
class CycleReport:
    cycle: str
    status: str  # saved | unchanged | dry-run | skipped | rejected | failed
    message: str
    base_version: int = 0
    version: int | None = None
    result: CycleResult | None = None
    state: dict[str, Any] | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def render(self) -> str:
        """What the CLI prints: the outcome, each change with its reason and samples, the notes."""
        lines = [f"[{self.cycle}] {self.status}: {self.message}"]
        if self.result is not None:
            samples = ", ".join(f"{k} {v}" for k, v in self.result.samples.items())
            lines.append(f"  samples: {samples or 'none'}")
            for change in self.result.changes:
                counts = ", ".join(f"{k} {v}" for k, v in change.samples.items())
                lines.append(f"  {change.key}: {_show(change.old)} -> {_show(change.new)}")
                lines.append(f"      why: {change.reason}" + (f" [{counts}]" if counts else ""))
            if self.result.clamped:
                lines.append("  clamped: true")
            for note in self.result.notes:
                lines.append(f"  note: {note}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def active_state(session: Session, initial: LearnedState) -> tuple[int, dict[str, Any]]:
    """(version, state JSON) of the active learned state, else (0, the config's)."""
    row = get_active_learned_state(session)
    if row is None:
        data = initial.to_json()
        data.pop("version", None)
        return 0, data
    return row.version, dict(row.state)


def compute(context: LearningContext, cycle: str, session: Session, base: dict[str, Any],
            now: datetime) -> CycleResult:
    """Read the cycle's data window and run the pure cycle on it."""
    config = context.config
    since = now - timedelta(hours=config.window_h(cycle))
    samples = load_samples(session, since, now)
    if cycle == "validators":
        return validators_cycle(base.get("weights") or dict(context.initial.weights), samples,
                                config.validator_params())
    if cycle == "thresholds":
        thresholds = base.get("thresholds") or {}
        review = float(thresholds.get("review", context.initial.thresholds.review))
        approved = float(thresholds.get("approved", context.initial.thresholds.approved))
        initial = ThresholdPoint(now, context.initial.thresholds.review, context.initial.thresholds.approved)
        history = load_threshold_history(session, initial)
        return thresholds_cycle(review, approved, samples, history, now, config.threshold_params())
    if cycle == "assignments":
        assignments = {**context.initial.assignments, **(base.get("assignments") or {})}
        return assignments_cycle(assignments, base.get("exploration") or {}, samples, context.tiers,
                                 config.assignment_params())
    raise ValueError(f"unknown cycle {cycle!r}; cycles: {', '.join(CYCLES)}")


def run_cycle(context: LearningContext, cycle: str, *, now: datetime | None = None,
              dry_run: bool = False) -> CycleReport:
    """Run `cycle` once (see the module docstring)."""
    if cycle not in CYCLES:
        raise ValueError(f"unknown cycle {cycle!r}; cycles: {', '.join(CYCLES)}")
    now = now or datetime.now(UTC)
    if dry_run:
        with context.session() as session:
            return _run(context, cycle, session, now, dry_run=True)
    lock = context.new_lock()
    with held(lock) as acquired:
        if not acquired:
            report = CycleReport(cycle, "skipped", f"another learning worker holds the {lock.kind}; skipped this run")
            log.info("%s", report.message)
            return report
        with context.session() as session:
            return _run(context, cycle, session, now, dry_run=False)


def _run(context: LearningContext, cycle: str, session: Session, now: datetime, *, dry_run: bool) -> CycleReport:
    base_version, base = active_state(session, context.initial)
    result = compute(context, cycle, session, base, now)
    merged = {**base, **result.values}
    report = CycleReport(cycle, "unchanged", "", base_version=base_version, result=result, state=merged, at=now)
    try:
        validate_state(merged, context.tiers, context.scorer, base_version + 1)
    except StateError as exc:
        report.status = "rejected"
        report.message = f"the new state is invalid and was not saved: {exc}"
        log.error("learning %s: %s", cycle, report.message)
        return report
    if dry_run:
        report.status = "dry-run" if result.changed else "unchanged"
        report.message = (f"{len(result.changes)} change(s) against version {base_version}; nothing saved"
                          if result.changed else f"nothing to change against version {base_version}; nothing saved")
        return report
    if not result.changed and not context.config.record_unchanged_runs:
        report.message = f"nothing to change (active version {base_version} stays)"
        return report
    reasons = {**result.to_json(), "based_on": base_version, "at": now.isoformat(),
               "window_h": context.config.window_h(cycle)}
    row = save_learned_state(session, merged, reasons, source=f"learning:{cycle}")
    report.version = row.version
    if result.changed:
        report.status = "saved"
        report.message = f"version {row.version} is active ({len(result.changes)} change(s) against {base_version})"
    else:
        report.message = (f"nothing to change; the run is recorded as version {row.version} "
                          f"(the same values as {base_version})")
    if context.overlay_path is not None:
        try:
            write_overlay(context.overlay_path, row.version, row.source, row.created_at, merged)
        except OSError as exc:
            report.message += f"; overlay not written: {exc}"
            log.error("learning %s: cannot write %s: %s", cycle, context.overlay_path, exc)
    log.info("learning %s: %s", cycle, report.message)
    return report
