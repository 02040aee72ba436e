"""The data the learning cycles take and give: plain, frozen dataclasses, no database.

`learning.data` fills `AuditSample`s from the audit and review tables; the benchmark
(`scripts/bench_learning.py`) and the tests build them directly. Every cycle returns a
`CycleResult`: the new values (a partial learned state), one `Change` per moved value with its
reason and the sample counts behind it, and `notes` saying why anything did not move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Review states (store.queries.REVIEW_STATES) that carry a verdict.
ACCEPTED_STATES = frozenset({"approved"})
REJECTED_STATES = frozenset({"rejected"})
CORRECTED_STATE = "corrected"
DEFAULT_CORRECTED_GOOD_SCORE = 7.0


@dataclass(frozen=True, slots=True)
class Step:
    """One cascade step (the audit row's `steps` item)."""

    tier: str | None
    score: float | None = None
    cost: float = 0.0
    error: str | None = None
    # Per-step validator scores, when the cascade records them (`steps[i]["validator_scores"]`).
    validator_scores: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Review:
    """The review item of an audit row: its state and the reviewer's 0-10 rating, if any."""

    state: str  # pending | approved | rejected | corrected
    score: float | None = None


@dataclass(frozen=True, slots=True)
class AuditSample:
    """What the cycles need of one audit row (and its review item, if it has one)."""

    id: int
    created_at: datetime
    task_type: str | None
    tier: str | None  # the tier that served the final answer
    status: str  # approved | warning | pending_review | error
    confidence: float | None
    escalations: int = 0
    cost: float = 0.0
    steps: tuple[Step, ...] = ()
    validator_scores: Mapping[str, float] = field(default_factory=dict)
    review: Review | None = None

    @property
    def first_tier(self) -> str | None:
        """The tier the request started on (its first cascade step; the row's tier without steps)."""
        return self.steps[0].tier if self.steps else self.tier

    @property
    def escalated(self) -> bool:
        return self.escalations > 0 or len(self.steps) > 1


def verdict_label(review: Review | None, corrected_good_score: float = DEFAULT_CORRECTED_GOOD_SCORE) -> bool | None:
    """True: the reviewer accepted the answer; False: rejected; None: no verdict (yet).

    `approved` is accepted and `rejected` is not. A `corrected` answer counts as accepted when
    the reviewer rated it at least `corrected_good_score` (a small fix), else as rejected.
    """
    if review is None:
        return None
    if review.state in ACCEPTED_STATES:
        return True
    if review.state in REJECTED_STATES:
        return False
    if review.state == CORRECTED_STATE:
        return review.score is not None and review.score >= corrected_good_score
    return None


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    """The gate thresholds that served from `at` on (a learned-state version, or the config)."""

    at: datetime
    review: float
    approved: float


@dataclass(frozen=True, slots=True)
class Change:
    """One learned value that moved: `key` is dotted (`weights.refusal`, `assignments.chat`)."""

    key: str
    old: Any
    new: Any
    reason: str
    samples: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new, "reason": self.reason, "samples": self.samples}


@dataclass(slots=True)
class CycleResult:
    """What one cycle computed: `values` is a partial learned state (whole sections it owns)."""

    cycle: str
    values: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    clamped: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "changes": [c.to_json() for c in self.changes],
            "notes": list(self.notes),
            "samples": dict(self.samples),
            "clamped": self.clamped,
        }
