"""The learned-state contract: what the learning worker writes and every gateway serves.

A `LearnedState` is plain data (thresholds, task type -> tier, validator weights, exploration
shares), versioned in the database. `parse_state` is the one gate both sides pass it through:
the worker before it saves a version, the gateway before it swaps one in. It refuses whole
anything the learner could never produce (the same bounds the cycles are held to), so a
hand-edited or corrupted row can never zero every confidence or approve everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# The bounds a learned state must keep (the learning cycles are configured inside them).
WEIGHT_CEILING = 100.0  # no validator weight above this (LearningConfig.weights_max <= this)
MIN_THRESHOLD_GAP = 0.5  # approved - review; the thresholds cycle keeps at least this gap
MAX_EXPLORATION = 0.5


class StateError(ValueError):
    """A learned state that must not be served (the message says why)."""


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
    weights: dict[str, float]  # validator name -> weight
    exploration: dict[str, float] = field(default_factory=dict)  # task type -> share sent one tier cheaper

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "thresholds": {"review": self.thresholds.review, "approved": self.thresholds.approved},
            "assignments": dict(self.assignments),
            "weights": dict(self.weights),
            "exploration": dict(self.exploration),
        }


def _finite(name: str, value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise StateError(f"{name} must be a finite number, not {value!r}")
    return number


def parse_state(data: dict[str, Any], tiers: list[str], version: int) -> LearnedState:
    """Build a LearnedState from its JSON form, refusing anything outside the learner's bounds."""
    try:
        raw_thresholds = data.get("thresholds") or {}
        thresholds = Thresholds(_finite("thresholds.review", raw_thresholds.get("review", 4.0)),
                                _finite("thresholds.approved", raw_thresholds.get("approved", 7.0)))
        assignments = {str(k): str(v) for k, v in (data.get("assignments") or {}).items()}
        weights = {str(k): _finite(f"weights.{k}", v) for k, v in (data.get("weights") or {}).items()}
        exploration = {str(k): _finite(f"exploration.{k}", v) for k, v in (data.get("exploration") or {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"malformed learned state: {exc}") from None
    if not (thresholds.review >= 0 and thresholds.approved <= 10
            and thresholds.approved - thresholds.review >= MIN_THRESHOLD_GAP):
        raise StateError(f"thresholds must satisfy 0 <= review <= approved - {MIN_THRESHOLD_GAP} <= 10: "
                         f"review {thresholds.review}, approved {thresholds.approved}")
    for task, tier in assignments.items():
        if tier not in tiers:
            raise StateError(f"assignment {task} -> {tier!r}: not a tier")
    for name, weight in weights.items():
        if not 0 <= weight <= WEIGHT_CEILING:
            raise StateError(f"weight for {name} must be within 0..{WEIGHT_CEILING:g}, not {weight:g}")
    for task, share in exploration.items():
        if not 0 <= share <= MAX_EXPLORATION:
            raise StateError(f"exploration share for {task} must be within 0..{MAX_EXPLORATION}")
    return LearnedState(version, thresholds, assignments, weights, exploration)
