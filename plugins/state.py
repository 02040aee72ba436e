"""The learned state the pipeline reads on every request, and the holder that swaps it whole.

Plugins read `holder.current` once per request and use that one object throughout, so a reload
in the middle of a request can never mix two versions. A new state is validated before it
replaces the old one: a bad state is refused and the old one keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .validators import Scorer


@dataclass(frozen=True, slots=True)
class Thresholds:
    review: float = 4.0
    approved: float = 7.0

    def verdict(self, confidence: float) -> str:
        """0-review pending_review, review-approved warning, approved-10 approved (boundaries go up)."""
        if confidence >= self.approved:
            return "approved"
        if confidence >= self.review:
            return "warning"
        return "pending_review"


@dataclass(frozen=True, slots=True)
class LearnedState:
    version: int
    thresholds: Thresholds
    assignments: dict[str, str]  # task type -> tier
    weights: dict[str, float]
    exploration: dict[str, float] = field(default_factory=dict)  # task type -> share sent one tier cheaper
    scorer: Scorer | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "thresholds": {"review": self.thresholds.review, "approved": self.thresholds.approved},
            "assignments": dict(self.assignments),
            "weights": dict(self.weights),
            "exploration": dict(self.exploration),
        }


def initial_state(thresholds: Thresholds, task_types: dict[str, Any], scorer: Scorer) -> LearnedState:
    """Version 0: configured thresholds, weights and task-type tiers, until a learned one is loaded."""
    assignments = {name: task.tier for name, task in task_types.items()}
    return LearnedState(0, thresholds, assignments, dict(scorer.weights), {}, scorer)


class StateError(ValueError):
    """A learned state that must not be served (the message says why)."""


def validate_state(data: dict[str, Any], tiers: list[str], base: Scorer, version: int) -> LearnedState:
    """Build a LearnedState from its JSON form, refusing anything inconsistent."""
    try:
        raw_thresholds = data.get("thresholds") or {}
        thresholds = Thresholds(float(raw_thresholds.get("review", 4.0)), float(raw_thresholds.get("approved", 7.0)))
        assignments = {str(k): str(v) for k, v in (data.get("assignments") or {}).items()}
        weights = {str(k): float(v) for k, v in (data.get("weights") or {}).items()}
        exploration = {str(k): float(v) for k, v in (data.get("exploration") or {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"malformed learned state: {exc}") from None
    if not 0 <= thresholds.review <= thresholds.approved <= 10:
        raise StateError(f"thresholds out of order: {thresholds}")
    for task, tier in assignments.items():
        if tier not in tiers:
            raise StateError(f"assignment {task} -> {tier!r}: not a tier")
    for task, share in exploration.items():
        if not 0 <= share <= 0.5:
            raise StateError(f"exploration share for {task} must be within 0..0.5")
    try:
        scorer = base.with_weights(weights)
    except ValueError as exc:
        raise StateError(str(exc)) from None
    return LearnedState(version, thresholds, assignments, weights, exploration, scorer)


class StateHolder:
    """Holds the current LearnedState; `swap` validates first and keeps the old one on failure."""

    def __init__(self, initial: LearnedState, tiers: list[str], base: Scorer) -> None:
        self.current = initial
        self._tiers = tiers
        self._base = base

    def swap(self, data: dict[str, Any], version: int) -> LearnedState:
        state = validate_state(data, self._tiers, self._base, version)
        self.current = state
        return state
