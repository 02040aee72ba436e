"""`LearningConfig`: the learning worker's knobs (intervals, windows, minimum samples, bounds).

They belong in the `gateway.learning` section of `config/litellm.yaml` (ADR 0003: "intervals,
minimum samples, clamp, target and exploration share are config, not code"). `from_settings`
reads `settings.learning`, with command-line overrides applied.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from learning.cycles import AssignmentParams, ThresholdParams, ValidatorParams


class LearningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Schedule (hours) and the trailing data window each cycle reads (hours).
    validators_interval_h: float = Field(default=6.0, gt=0)
    thresholds_interval_h: float = Field(default=12.0, gt=0)
    assignments_interval_h: float = Field(default=24.0, gt=0)
    validators_window_h: float = Field(default=72.0, gt=0)
    thresholds_window_h: float = Field(default=24.0, gt=0)
    assignments_window_h: float = Field(default=48.0, gt=0)
    # Where the rendered overlay goes (relative paths: to the working directory).
    overlay_path: str = "config/learned.yaml"
    # How often a gateway polls the database for a new active version.
    reload_interval_s: float = Field(default=2.0, gt=0)
    # A Redis lock expires after this long (a crashed worker cannot hold it forever).
    lock_ttl_s: float = Field(default=900.0, gt=0)
    # Record a run that changed nothing as a version too (the versions table is the run log).
    record_unchanged_runs: bool = True
    # A `corrected` verdict rated at least this counts as accepted.
    corrected_good_score: float = Field(default=7.0, ge=0, le=10)

    # validators
    weights_min_labelled: int = Field(default=50, ge=1)
    weights_min_objections: int = Field(default=5, ge=1)
    weights_l2: float = Field(default=1.0, ge=0)
    weights_max_step_rel: float = Field(default=0.25, gt=0)
    weights_max_step_abs: float = Field(default=0.5, gt=0)
    weights_max: float = Field(default=5.0, gt=0)
    weights_escalation_weight: float = Field(default=0.0, ge=0, le=1)

    # thresholds
    approve_target: float = Field(default=0.95, gt=0, le=1)
    review_budget: float = Field(default=0.10, ge=0, le=1)
    thresholds_min_reviewed: int = Field(default=100, ge=1)
    thresholds_max_drift: float = Field(default=0.5, ge=0)

    # assignments
    assignment_min_samples: int = Field(default=30, ge=1)
    assignment_min_approval: float = Field(default=0.60, ge=0, le=1)
    assignment_min_pass: float = Field(default=0.75, ge=0, le=1)
    assignment_relative_quality: float = Field(default=0.90, ge=0, le=1)
    explore_share: float = Field(default=0.10, ge=0, le=0.5)
    explore_min_share: float = Field(default=0.05, ge=0, le=0.5)
    max_tier: str | None = None

    def intervals_s(self) -> dict[str, float]:
        return {
            "validators": self.validators_interval_h * 3600,
            "thresholds": self.thresholds_interval_h * 3600,
            "assignments": self.assignments_interval_h * 3600,
        }

    def window_h(self, cycle: str) -> float:
        return float(getattr(self, f"{cycle}_window_h"))

    def validator_params(self) -> ValidatorParams:
        return ValidatorParams(
            min_labelled=self.weights_min_labelled,
            min_objections=self.weights_min_objections,
            l2=self.weights_l2,
            max_step_rel=self.weights_max_step_rel,
            max_step_abs=self.weights_max_step_abs,
            weight_max=self.weights_max,
            escalation_weight=self.weights_escalation_weight,
            corrected_good_score=self.corrected_good_score,
        )

    def threshold_params(self) -> ThresholdParams:
        return ThresholdParams(
            approve_target=self.approve_target,
            review_budget=self.review_budget,
            min_reviewed=self.thresholds_min_reviewed,
            max_drift=self.thresholds_max_drift,
            corrected_good_score=self.corrected_good_score,
        )

    def assignment_params(self) -> AssignmentParams:
        return AssignmentParams(
            min_samples=self.assignment_min_samples,
            min_approval=self.assignment_min_approval,
            min_pass=self.assignment_min_pass,
            relative_quality=self.assignment_relative_quality,
            explore_share=self.explore_share,
            explore_min_share=self.explore_min_share,
            max_tier=self.max_tier,
            corrected_good_score=self.corrected_good_score,
        )


def from_settings(settings: Any, **overrides: Any) -> LearningConfig:
    """`settings.learning` with `overrides` (those that are not None) applied."""
    data = settings.learning.model_dump()
    data.update({k: v for k, v in overrides.items() if v is not None})
    return LearningConfig(**data)
