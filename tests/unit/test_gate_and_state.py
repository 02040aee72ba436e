"""Gate bands at their boundaries, and the learned-state holder refusing bad states."""

from __future__ import annotations

import pytest

from plugins.state import StateError, StateHolder, Thresholds, validate_state
from plugins.tasks import infer_task_type
from plugins.validators import Scorer, default_validators


@pytest.mark.parametrize(
    ("confidence", "verdict"),
    [
        (0.0, "pending_review"),
        (3.9, "pending_review"),
        (4.0, "warning"),
        (6.9, "warning"),
        (7.0, "approved"),
        (10.0, "approved"),
    ],
)
def test_gate_bands_at_their_boundaries(confidence, verdict):
    assert Thresholds().verdict(confidence) == verdict


def test_learned_thresholds_move_the_bands():
    assert Thresholds(review=3.5, approved=6.5).verdict(6.6) == "approved"
    assert Thresholds(review=3.5, approved=6.5).verdict(3.6) == "warning"


def _holder() -> StateHolder:
    scorer = Scorer(default_validators())
    initial = validate_state({"assignments": {"chat": "fast"}}, ["fast", "medium"], scorer, 0)
    return StateHolder(initial, ["fast", "medium"], scorer)


@pytest.mark.parametrize(
    "bad",
    [
        {"thresholds": {"review": 8, "approved": 7}},
        {"assignments": {"chat": "gigantic"}},
        {"weights": {"refusal": -1}},
        {"exploration": {"chat": 0.9}},
        {"thresholds": "high"},
    ],
)
def test_a_bad_learned_state_is_refused_and_the_old_one_keeps_serving(bad):
    holder = _holder()
    before = holder.current
    with pytest.raises(StateError):
        holder.swap(bad, 1)
    assert holder.current is before


def test_a_good_learned_state_replaces_the_old_one():
    holder = _holder()
    state = holder.swap(
        {
            "thresholds": {"review": 3.0, "approved": 6.0},
            "assignments": {"chat": "medium"},
            "weights": {"refusal": 2.0},
        },
        2,
    )
    assert holder.current is state and state.version == 2
    assert state.scorer is not None and state.scorer.weights["refusal"] == 2.0


@pytest.mark.parametrize(
    ("prompt", "tools", "expected"),
    [
        ("Please summarize this article about the election results.", False, "summarization"),
        ("Translate 'good morning' into German.", False, "translation"),
        ("Write a Python function that parses ISO dates.", False, "code_generation"),
        ("def f(x):\n    return x * 2\n\nwhy is this slow?", False, "code_generation"),
        ("Review this code for bugs: ...", False, "code_review"),
        ("What's the capital of France?", False, "chat"),
        ("Book a flight", True, "agentic"),
    ],
)
def test_local_classifier_infers_task_types(prompt, tools, expected):
    assert infer_task_type(prompt, tools)[0] == expected


def test_task_types_map_onto_the_configured_tiers():
    from plugins.tasks import build_task_types

    types = build_task_types({}, ["fast", "large"])
    assert types["code_generation"].tier == "large"  # medium is not configured: the next stronger tier
    assert types["chat"].tier == "fast"
    assert build_task_types({}, ["fast"])["agentic"].tier == "fast"
