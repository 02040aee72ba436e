"""The validator contract: a `Validator` scores one answer to one request, 0 to 10.

A validator is a small object built once (at pipeline assembly) and called for every answer, so
`score` must be cheap (the whole default set stays under a millisecond on a 1,000-token answer):
no I/O, no per-call compilation, nothing that grows with the size of the request beyond a bounded
sample of it. A validator that does not apply to a request (the classification check on a chat
request, the code check on an answer without code) *abstains*: its result carries no evidence and
does not count toward the confidence (see `confidence.py`).

`passed` is the validator's own verdict, recorded in the audit for the learning cycle (which
compares it with the reviewers' verdicts); the confidence is computed from the scores alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.types import ChatRequest, ChatResponse

PASS_SCORE = 5.0
"""Default `passed` threshold: the score below which the cascade would escalate on this check alone."""


@dataclass(frozen=True, slots=True)
class ValidatorResult:
    """One validator's verdict on one answer.

    `score` is 0 (certainly bad) to 10 (no problem found). When `abstained` is true the validator
    did not apply; `score` is then 0.0, `passed` true, and both are meaningless.
    """

    name: str
    score: float
    passed: bool
    reason: str
    abstained: bool = False
    # What the verdict rests on, for a reviewer (the code check: each example run, what it printed).
    evidence: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 10.0:  # also rejects NaN
            raise ValueError(f"validator {self.name!r} returned score {self.score!r}, outside 0..10")

    @classmethod
    def of(cls, name: str, score: float, reason: str, passed: bool | None = None) -> ValidatorResult:
        """A verdict; `passed` defaults to `score >= PASS_SCORE`."""
        return cls(name, float(score), score >= PASS_SCORE if passed is None else passed, reason)

    @classmethod
    def abstain(cls, name: str, reason: str) -> ValidatorResult:
        """No verdict: the validator does not apply to this request or answer."""
        return cls(name, 0.0, True, reason, abstained=True)


class Validator(Protocol):
    """Scores answers. `name` keys the learned weights and the audit; `default_weight` is used
    until the learning cycle has a weight for it (weights >= 1 give a failing score full veto
    power over the confidence; see `confidence.py`)."""

    name: str
    default_weight: float

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult: ...
