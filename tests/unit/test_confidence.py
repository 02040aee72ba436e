"""Combining validator results into the 0-10 confidence that drives the gate and the cascade."""

from __future__ import annotations

import logging

import pytest

from core.types import ChatRequest, ChatResponse
from plugins.validators import NEUTRAL, Scorer, ValidatorResult, combine, default_validators
from plugins.validators.confidence import cap

PENDING_REVIEW_BELOW = 4.0
ESCALATE_BELOW = 5.0
APPROVED_FROM = 7.0

QUESTION = (
    "Our nightly job sometimes fails with 'database is locked' when two workers write to the same "
    "SQLite file. What is causing this and how do we fix it without moving to Postgres?"
)
GOOD_ANSWER = (
    "SQLite allows many readers but only one writer at a time, and by default a writer that finds the "
    "database locked gives up immediately. Two fixes work well together. First, switch the database to "
    "write-ahead logging with PRAGMA journal_mode=WAL, so that readers no longer block the writer. "
    "Second, set a busy timeout, for example PRAGMA busy_timeout=5000, so that a worker waits up to five "
    "seconds for the lock instead of failing. Keep write transactions short, and commit after each batch "
    "rather than holding one transaction open for the whole job."
)


def ok(name: str, score: float = 10.0) -> ValidatorResult:
    return ValidatorResult.of(name, score, "fine")


def bad(name: str, score: float) -> ValidatorResult:
    return ValidatorResult.of(name, score, "problem")


def abstain(name: str) -> ValidatorResult:
    return ValidatorResult.abstain(name, "does not apply")


def request(**kwargs: object) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": QUESTION}], **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# combine()
# --------------------------------------------------------------------------------------------


def test_a_hard_failure_is_not_diluted_by_passing_checks() -> None:
    results = [bad("non_empty", 0.0), ok("refusal"), ok("truncation"), ok("language"), ok("repetition")]
    weights = {name: 1.0 for name in ("non_empty", "refusal", "truncation", "language", "repetition")}
    confidence = combine(results, weights)
    assert confidence < PENDING_REVIEW_BELOW
    # a plain weighted mean would have said 8.0, "approved"
    assert sum(r.score for r in results) / len(results) == 8.0


def test_all_good_is_approved() -> None:
    results = [ok("non_empty"), ok("refusal"), ok("language", 9.0), ok("repetition", 8.0)]
    assert combine(results, {}) >= APPROVED_FROM


def test_failure_severity_maps_onto_the_gate_bands() -> None:
    others = [ok("a"), ok("b"), ok("c")]
    assert combine([bad("x", 1.0), *others], {}) < PENDING_REVIEW_BELOW
    assert combine([bad("x", 2.0), *others], {}) < ESCALATE_BELOW
    assert combine([bad("x", 4.0), *others], {}) < APPROVED_FROM
    assert combine([ok("x", 8.0), *others], {}) >= APPROVED_FROM


def test_abstentions_are_ignored() -> None:
    results = [ok("non_empty"), bad("code_syntax", 2.0), ok("repetition", 9.0)]
    with_abstentions = [*results, abstain("classification"), abstain("json_mode"), abstain("summarization")]
    assert combine(with_abstentions, {}) == combine(results, {})


def test_all_abstaining_gives_the_neutral_value() -> None:
    results = [abstain("classification"), abstain("json_mode")]
    assert combine(results, {}) == NEUTRAL == 6.0
    assert combine([], {}) == NEUTRAL
    assert combine(results, {}, neutral=7.0) == 7.0
    assert ESCALATE_BELOW <= NEUTRAL < APPROVED_FROM


def test_weights_are_respected() -> None:
    results = [ok("refusal", 10.0), ok("language", 6.0)]
    assert combine(results, {"refusal": 3.0, "language": 1.0}) == 8.5  # mean 9.0, capped by 6 + 2.5
    assert combine(results, {"refusal": 1.0, "language": 3.0}) == 7.0  # mean 7.0


def test_a_missing_weight_falls_back_to_the_default() -> None:
    results = [ok("refusal", 10.0), ok("language", 6.0)]
    assert combine(results, {"refusal": 3.0}, default_weight=1.0) == combine(
        results, {"refusal": 3.0, "language": 1.0}
    )


def test_a_zero_weight_silences_a_validator_and_a_small_weight_softens_its_veto() -> None:
    results = [ok("refusal"), ok("language"), bad("length", 0.0)]
    assert combine(results, {"length": 0.0}) == 10.0
    softened = combine(results, {"length": 0.3})
    assert combine(results, {"length": 1.0}) < PENDING_REVIEW_BELOW < softened < 10.0


def test_cap_is_monotonic_in_score_and_weight() -> None:
    assert cap(0.0, 1.0) == 2.5 and cap(7.5, 1.0) == 10.0
    assert cap(0.0, 5.0) == cap(0.0, 1.0)
    assert cap(2.0, 1.0) < cap(3.0, 1.0) and cap(2.0, 1.0) < cap(2.0, 0.5) < cap(2.0, 0.0) == 10.0


def test_confidence_is_rounded_to_one_decimal_within_range() -> None:
    confidence = combine([ok("a", 9.0), ok("b", 8.0), ok("c", 8.0)], {})
    assert confidence == 8.3
    assert 0.0 <= combine([bad("a", 0.0)], {}) <= 10.0


# --------------------------------------------------------------------------------------------
# Scorer with the real validators
# --------------------------------------------------------------------------------------------


def test_scorer_approves_a_good_answer() -> None:
    scoring = Scorer(default_validators()).score(request(), ChatResponse(text=GOOD_ANSWER, finish_reason="stop"))
    assert scoring.confidence >= APPROVED_FROM
    assert not scoring.failed
    assert scoring.scores["non_empty"] == 10.0 and scoring.scores["classification"] is None


@pytest.mark.parametrize(
    ("response", "failing"),
    [
        (ChatResponse(text="", finish_reason="stop"), "non_empty"),
        (ChatResponse(text="I'm sorry, but I can't help with that request.", finish_reason="stop"), "refusal"),
        (ChatResponse(text=GOOD_ANSWER[:250], finish_reason="length"), "truncation"),
        (
            ChatResponse(
                text="SQLite erlaubt viele Leser, aber immer nur einen Schreiber. Stellen Sie die Datenbank auf "
                "WAL um und setzen Sie ein busy_timeout, damit ein Worker auf die Sperre wartet, statt sofort "
                "mit einem Fehler abzubrechen.",
                finish_reason="stop",
            ),
            "language",
        ),
        (
            ChatResponse(text="Use WAL mode and a busy timeout. " + "The database is locked by the writer. " * 30,
                         finish_reason="stop"),
            "repetition",
        ),
    ],
)
def test_scorer_sends_hard_failures_to_review(response: ChatResponse, failing: str) -> None:
    scoring = Scorer(default_validators()).score(request(), response)
    assert scoring.confidence < PENDING_REVIEW_BELOW
    assert failing in {r.name for r in scoring.failed}


def test_scorer_weights_override_defaults_and_unknown_names_are_ignored() -> None:
    validators = default_validators()
    scorer = Scorer(validators, {"language": 0.0, "retired_validator": 4.0})
    assert scorer.weights["language"] == 0.0
    assert scorer.weights["refusal"] == next(v.default_weight for v in validators if v.name == "refusal")
    assert "retired_validator" not in scorer.weights
    german = ChatResponse(
        text="SQLite erlaubt viele Leser, aber immer nur einen Schreiber. Stellen Sie die Datenbank auf WAL "
        "um und setzen Sie ein busy_timeout, damit ein Worker auf die Sperre wartet.",
        finish_reason="stop",
    )
    assert scorer.score(request(), german).confidence >= APPROVED_FROM  # language check switched off
    assert scorer.with_weights({}).score(request(), german).confidence < PENDING_REVIEW_BELOW


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_scorer_rejects_bad_weights(weight: float) -> None:
    with pytest.raises(ValueError, match="language"):
        Scorer(default_validators()).with_weights({"language": weight})


class _Exploding:
    name = "exploding"
    default_weight = 5.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        raise KeyError("bug in a validator")


def test_a_validator_that_raises_abstains_instead_of_failing_the_request(caplog: pytest.LogCaptureFixture) -> None:
    scorer = Scorer([_Exploding(), *default_validators()])
    with caplog.at_level(logging.ERROR):
        scoring = scorer.score(request(), ChatResponse(text=GOOD_ANSWER, finish_reason="stop"))
    assert scoring.confidence >= APPROVED_FROM
    assert scoring.results[0].abstained and "KeyError" in scoring.results[0].reason
    assert "exploding" in caplog.text
