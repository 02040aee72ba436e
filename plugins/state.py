"""The learned state as the pipeline serves it, and the holder that swaps it whole.

A `Snapshot` is one `core.learned.LearnedState` plus the scorer built from its weights. The
gateway takes `holder.current` once per request (`CallContext.learned`) and every plugin reads
that one object, so a reload in the middle of a request can never mix two versions, and the
audit row records the version that decided. A new state is validated (`core.learned.parse_state`,
then the scorer's own weight checks) before it replaces the old one: a bad state is refused and
the old one keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.learned import LearnedState, StateError, Thresholds, parse_state

from .validators import Scorer


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: LearnedState
    scorer: Scorer

    @property
    def version(self) -> int:
        return self.state.version

    @property
    def thresholds(self) -> Thresholds:
        return self.state.thresholds

    @property
    def assignments(self) -> dict[str, str]:
        return self.state.assignments

    @property
    def weights(self) -> dict[str, float]:
        return self.state.weights

    @property
    def exploration(self) -> dict[str, float]:
        return self.state.exploration


def initial_state(thresholds: Thresholds, task_types: dict[str, Any], scorer: Scorer) -> Snapshot:
    """Version 0: configured thresholds, weights and task-type tiers, until a learned one is loaded."""
    assignments = {name: task.tier for name, task in task_types.items()}
    return Snapshot(LearnedState(0, thresholds, assignments, dict(scorer.weights), {}), scorer)


def validate_state(data: dict[str, Any], tiers: list[str], base: Scorer, version: int) -> Snapshot:
    """Build a Snapshot from a learned state's JSON form, refusing anything inconsistent."""
    state = parse_state(data, tiers, version)
    try:
        scorer = base.with_weights(state.weights)
    except ValueError as exc:
        raise StateError(str(exc)) from None
    return Snapshot(state, scorer)


class StateHolder:
    """Holds the current Snapshot; `swap` validates first and keeps the old one on failure."""

    def __init__(self, initial: Snapshot, tiers: list[str], base: Scorer) -> None:
        self.current = initial
        self._tiers = tiers
        self._base = base

    def swap(self, data: dict[str, Any], version: int) -> Snapshot:
        snapshot = validate_state(data, self._tiers, self._base, version)
        self.current = snapshot
        return snapshot
