"""The three learning cycles, each a pure function of (current values, audit samples) -> CycleResult.

- `validators_cycle` (every 6 h): validator weights from reviewers' verdicts.
- `thresholds_cycle` (every 12 h): the gate's review/approved thresholds, drift-clamped.
- `assignments_cycle` (every 24 h): task type -> tier, plus exploration shares.

See docs/adr/0003 for why these intervals, and each module's docstring for its rule.
"""

from learning.cycles.assignments import AssignmentParams, Cell, assignments_cycle, cells
from learning.cycles.thresholds import ThresholdParams, baseline, thresholds_cycle
from learning.cycles.validators import ValidatorParams, validators_cycle

CYCLES: tuple[str, ...] = ("validators", "thresholds", "assignments")

__all__ = [
    "CYCLES",
    "AssignmentParams",
    "Cell",
    "ThresholdParams",
    "ValidatorParams",
    "assignments_cycle",
    "baseline",
    "cells",
    "thresholds_cycle",
    "validators_cycle",
]
