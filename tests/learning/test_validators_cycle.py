"""The validator-weights cycle on constructed verdicts: direction, step bounds, range, minimums."""

from __future__ import annotations

from learning.cycles import ValidatorParams, validators_cycle
from learning.stats import logistic_fit
from learning.types import Review, verdict_label
from tests.learning.factories import sample, verdict_rows

DETECTORS = {"strong": (0.8, 0.03), "weak": (0.35, 0.1), "noise": (0.3, 0.3)}


def test_logistic_fit_recovers_the_direction_and_stays_finite_on_separable_data() -> None:
    rows = [[x / 10] for x in range(11)] * 10
    labels = [x[0] >= 0.5 for x in rows]  # perfectly separable
    fit = logistic_fit(rows, labels, l2=1.0)
    assert fit.converged and fit.coefficients[0] > 3 and fit.std_errors[0] > 0
    assert fit.predict([0.9]) > 0.8 > 0.2 > fit.predict([0.1])


def test_verdict_labels() -> None:
    assert verdict_label(Review("approved")) is True
    assert verdict_label(Review("rejected")) is False
    assert verdict_label(Review("corrected", 8.0)) is True
    assert verdict_label(Review("corrected", 3.0)) is False and verdict_label(Review("corrected")) is False
    assert verdict_label(Review("pending")) is None and verdict_label(None) is None


def test_predictive_validators_gain_weight_and_a_noisy_one_loses_it() -> None:
    rows = verdict_rows(1500, DETECTORS, seed=3)
    result = validators_cycle({"strong": 2.0, "weak": 2.0, "noise": 2.0}, rows)
    new = result.values["weights"]
    assert new["strong"] > 2.0, result.notes
    assert new["weak"] < 2.0 and new["noise"] < 2.0
    reasons = {c.key: c.reason for c in result.changes}
    assert "does not predict" in reasons["weights.noise"] and "target weight 0.00" in reasons["weights.noise"]
    change = next(c for c in result.changes if c.key == "weights.strong")
    assert "predicts verdicts" in change.reason and change.samples["labelled"] == 1500
    assert change.samples["objections"] > 0 and result.samples["verdicts"] == 1500


def test_each_weight_moves_a_bounded_step_and_stays_in_range() -> None:
    rows = verdict_rows(1500, DETECTORS, seed=4)
    params = ValidatorParams()
    start = {"strong": 4.9, "weak": 0.05, "noise": 3.0}
    for _ in range(6):  # several cycles on the same evidence: steps stay bounded, the range holds
        result = validators_cycle(start, rows, params)
        new = result.values["weights"]
        for name, old in start.items():
            bound = min(max(params.max_step_rel * old, params.min_step), params.max_step_abs)
            assert abs(new[name] - old) <= bound + 1e-3, (name, old, new[name])
            assert params.weight_min <= new[name] <= params.weight_max
        start = new
    assert start["strong"] <= 5.0 and start["noise"] < 3.0


def test_too_few_verdicts_change_nothing_and_say_so() -> None:
    rows = verdict_rows(40, DETECTORS, seed=5)
    weights = {"strong": 2.0, "weak": 2.0, "noise": 2.0}
    result = validators_cycle(weights, rows)
    assert not result.changed and result.values["weights"] == weights
    assert "need 50" in result.notes[0] and result.samples["labelled"] == 40


def test_one_sided_verdicts_change_nothing() -> None:
    rows = verdict_rows(300, DETECTORS, p_good=1.0, seed=6)
    assert not validators_cycle({"strong": 2.0, "weak": 2.0, "noise": 2.0}, rows).changed


def test_a_validator_that_rarely_objects_keeps_its_weight() -> None:
    rows = verdict_rows(1500, {**DETECTORS, "rare": (0.0, 0.0)}, seed=7)
    rows[0] = sample(0, scores={**rows[0].validator_scores, "rare": 0.0}, review="rejected")
    result = validators_cycle({"strong": 2.0, "weak": 2.0, "noise": 2.0, "rare": 3.0}, rows)
    assert result.values["weights"]["rare"] == 3.0
    assert any(note.startswith("rare:") for note in result.notes)


def test_pending_and_unreviewed_answers_are_not_labels() -> None:
    rows = [sample(i, scores={"strong": 0.0}, review="pending") for i in range(200)]
    rows += [sample(1000 + i, scores={"strong": 10.0}) for i in range(200)]
    result = validators_cycle({"strong": 2.0}, rows)
    assert result.samples["labelled"] == 0 and not result.changed
