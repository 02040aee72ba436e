"""Combining validator results into one confidence, 0-10 (one decimal).

The rule
--------
Only results that did not abstain and whose weight is above zero count. Then::

    mean       = sum(w_i * s_i) / sum(w_i)                      the weighted mean of the scores
    cap_i      = s_i + HEADROOM                                  for a validator with w_i >= 1
               = (s_i + HEADROOM) + (10 - s_i - HEADROOM) * (1 - w_i)   for 0 < w_i < 1
    confidence = min(mean, min_i cap_i, 10), rounded to one decimal

with HEADROOM = 2.5. If nothing counts (every validator abstained, or none is configured), the
confidence is NEUTRAL = 6.0.

Why a cap
---------
A plain weighted mean dilutes a severe failure among passing checks: an empty answer that one
validator scores 0 while four others (which have nothing to object to in an empty string) score
10 would come out near 8, "approved". A failure on any one dimension (empty, truncated, wrong
language, broken JSON, a loop) makes the answer unusable however good it is on the others, so the
worst score bounds the confidence from above. The mean still orders answers among themselves and
is what the learned weights move. With the gate at 0-4 pending_review, 4-7 warning, 7-10 approved
and the cascade escalating below 5, HEADROOM = 2.5 gives each check a readable veto:

* a score below 1.5 (empty, refusal, cut off at the token limit, wrong language) guarantees
  pending_review;
* a score below 2.5 (syntax error, schema mismatch, heavy repetition) guarantees an escalation;
* a score below 4.5 (partial refusal, JSON in a fence) keeps the answer out of "approved";
* a score of 7.5 or more never caps anything: small doubts only move the mean.

Why the weight softens the cap
------------------------------
The learning cycle lowers the weight of a validator whose verdicts disagree with the reviewers.
A weight of 1 or more gives the full veto; below 1 the cap relaxes linearly towards 10, and at 0
the validator is ignored entirely, so a validator that turned out to be noisy cannot keep vetoing
answers the reviewers approve. The default weights are all >= 1.

Why 6.0 when there is no evidence
---------------------------------
No applicable check is neither a pass nor a failure. 6.0 sits in the warning band: above 5, so
the cascade does not pay for a bigger tier that would be just as unverifiable; above 4, so the
review queue is not flooded with answers nobody found fault with; below 7, so the gateway does
not claim "approved" for an answer it could not check, and dashboards and the learning cycle see
it as unverified. Callers that want another policy pass `neutral=`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.types import ChatRequest, ChatResponse
from plugins.validators.base import Validator, ValidatorResult

log = logging.getLogger(__name__)

HEADROOM = 2.5
NEUTRAL = 6.0
DEFAULT_WEIGHT = 1.0


def cap(score: float, weight: float) -> float:
    """The highest confidence one result allows (see the module docstring)."""
    hard = min(10.0, score + HEADROOM)
    return hard + (10.0 - hard) * (1.0 - min(1.0, weight))


def combine(
    results: Sequence[ValidatorResult],
    weights: Mapping[str, float],
    *,
    default_weight: float = DEFAULT_WEIGHT,
    neutral: float = NEUTRAL,
) -> float:
    """Confidence 0-10 (one decimal) from validator results; `weights` by validator name, a
    missing name weighs `default_weight` (`Scorer` passes every validator's own default)."""
    total_weight = 0.0
    weighted_sum = 0.0
    ceiling = 10.0
    for result in results:
        if result.abstained:
            continue
        weight = weights.get(result.name, default_weight)
        if not weight > 0.0:  # zero, negative or NaN: no say
            continue
        total_weight += weight
        weighted_sum += weight * result.score
        ceiling = min(ceiling, cap(result.score, weight))
    if total_weight == 0.0:
        return round(neutral, 1)
    return round(max(0.0, min(weighted_sum / total_weight, ceiling)), 1)


@dataclass(frozen=True, slots=True)
class Scoring:
    """The confidence for one answer and the results it came from (in validator order)."""

    confidence: float
    results: tuple[ValidatorResult, ...]

    @property
    def failed(self) -> tuple[ValidatorResult, ...]:
        return tuple(r for r in self.results if not r.abstained and not r.passed)

    @property
    def scores(self) -> dict[str, float | None]:
        """Validator name -> score, None where it abstained (the audit row's shape)."""
        return {r.name: None if r.abstained else r.score for r in self.results}


def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, weight in weights.items():
        value = float(weight)
        if not math.isfinite(value) or value < 0.0:
            raise ValueError(f"validator weight for {name!r} must be a finite number >= 0, got {weight!r}")
        checked[name] = value
    return checked


class Scorer:
    """Runs validators on an answer and combines their results.

    Built once per pipeline (and again when a new learned state is loaded: `with_weights`).
    `weights` overrides the validators' default weights by name; names of validators that are not
    configured are ignored (the learned state may know more validators than this gateway runs).
    A validator that raises is logged and counted as abstaining: a bug in one check must not fail
    the request.
    """

    def __init__(
        self,
        validators: Sequence[Validator],
        weights: Mapping[str, float] | None = None,
        *,
        neutral: float = NEUTRAL,
    ) -> None:
        self.validators: tuple[Validator, ...] = tuple(validators)
        overrides = _check_weights(weights or {})
        self.weights: dict[str, float] = {
            v.name: overrides.get(v.name, float(v.default_weight)) for v in self.validators
        }
        self.neutral = neutral

    def with_weights(self, weights: Mapping[str, float]) -> Scorer:
        """A scorer with the same validators and new weights (validated here, so a bad learned
        state is rejected before it replaces the working one)."""
        return Scorer(self.validators, weights, neutral=self.neutral)

    def run(self, request: ChatRequest, response: ChatResponse) -> tuple[ValidatorResult, ...]:
        results: list[ValidatorResult] = []
        for validator in self.validators:
            try:
                results.append(validator.score(request, response))
            except Exception as exc:
                log.exception("validator %s failed", validator.name)
                reason = f"validator error: {type(exc).__name__}"
                results.append(ValidatorResult.abstain(validator.name, reason))
        return tuple(results)

    def score(self, request: ChatRequest, response: ChatResponse) -> Scoring:
        results = self.run(request, response)
        return Scoring(combine(results, self.weights, neutral=self.neutral), results)
