"""The validator-weights cycle (every 6 h): weight each validator by how well it predicts verdicts.

Labels
    A reviewer's verdict on an answer (`verdict_label`: approved, or corrected with a high rating,
    is good; rejected, or corrected with a low rating, is bad), with weight 1. An escalation
    outcome, when the cascade recorded per-step validator scores: a step whose next tier scored
    at least `escalation_gap` higher was a bad answer (weight `escalation_weight`). That label is
    off by default (weight 0): it is the validators' own judgement fed back to them, and in the
    simulation it made a noisy validator that causes escalations look predictive and gain weight.
Model
    An L2-regularised logistic regression of the label on the validators' scores (0-10 scaled to
    0-1; a validator that abstained counts as 1, "no objection", which is how the confidence rule
    treats it). A validator's coefficient is how much its score separates good from bad answers.
Weights
    Only what the data shows moves a weight. A validator is *predictive* when its coefficient is
    above 0 by `z` standard errors; its target is the mean current weight of the predictive
    validators times its coefficient over their mean coefficient (the strongest predictor gets the
    largest weight). It is *powerless* when even coefficient + `z` standard errors stays below the
    larger of `min_useful` and `min_useful_rel` x the predictive validators' mean coefficient; its
    target is `weight_min`. Anything in between is inconclusive and keeps its weight. Each
    weight then moves towards its target by at most `max_step_rel` of its value (at least
    `min_step`, so a zero weight can recover), never more than `max_step_abs`, and stays within
    [`weight_min`, `weight_max`]; a target within `dead_band_rel` of the current weight is noise.
Minimums
    Fewer than `min_labelled` labelled rows (or fewer than `min_per_class` of either class): no
    change. A validator that objected (scored below `objection_score`) fewer than
    `min_objections` times, or passed fewer than `min_objections` times, keeps its weight: there
    is nothing to judge it by (a check that rarely fires, like `non_empty`, must not lose its
    veto for lack of evidence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from learning.stats import logistic_fit
from learning.types import AuditSample, Change, CycleResult, verdict_label


@dataclass(frozen=True, slots=True)
class ValidatorParams:
    min_labelled: int = 50
    min_per_class: int = 5
    min_objections: int = 5
    objection_score: float = 5.0
    l2: float = 1.0
    max_step_rel: float = 0.25
    max_step_abs: float = 0.5
    min_step: float = 0.1
    weight_min: float = 0.0
    weight_max: float = 5.0
    z: float = 2.0
    min_useful: float = 1.0
    min_useful_rel: float = 0.5
    dead_band_rel: float = 0.1
    escalation_gap: float = 3.0
    escalation_weight: float = 0.0
    corrected_good_score: float = 7.0


@dataclass(frozen=True, slots=True)
class _Labelled:
    scores: Mapping[str, float]
    good: bool
    weight: float


def labelled_rows(samples: Sequence[AuditSample], params: ValidatorParams) -> tuple[list[_Labelled], int, int]:
    """(rows, verdict count, escalation-outcome count)."""
    rows: list[_Labelled] = []
    verdicts = escalations = 0
    for sample in samples:
        label = verdict_label(sample.review, params.corrected_good_score)
        if label is not None and sample.validator_scores:
            rows.append(_Labelled(sample.validator_scores, label, 1.0))
            verdicts += 1
        for step, after in zip(sample.steps, sample.steps[1:], strict=False):
            if (
                params.escalation_weight > 0
                and step.validator_scores
                and step.error is None
                and step.score is not None
                and after.score is not None
                and after.score - step.score >= params.escalation_gap
            ):
                rows.append(_Labelled(step.validator_scores, False, params.escalation_weight))
                escalations += 1
    return rows, verdicts, escalations


def _bounded(current: float, target: float, params: ValidatorParams) -> tuple[float, bool]:
    bound = min(max(params.max_step_rel * current, params.min_step), params.max_step_abs)
    delta = max(-bound, min(bound, target - current))
    new = max(params.weight_min, min(params.weight_max, current + delta))
    return new, abs(target - current) > bound + 1e-12


def validators_cycle(
    weights: Mapping[str, float],
    samples: Sequence[AuditSample],
    params: ValidatorParams = ValidatorParams(),
) -> CycleResult:
    """New validator weights from verdicts (see the module docstring). Pure: no I/O."""
    current = {name: float(w) for name, w in weights.items()}
    result = CycleResult("validators", {"weights": dict(current)})
    rows, verdicts, escalations = labelled_rows(samples, params)
    good = sum(1 for r in rows if r.good)
    result.samples = {"labelled": len(rows), "verdicts": verdicts, "escalations": escalations,
                      "good": good, "bad": len(rows) - good}
    if len(rows) < params.min_labelled:
        result.notes.append(f"only {len(rows)} labelled answers ({verdicts} verdicts, {escalations} escalations); "
                            f"need {params.min_labelled}: weights unchanged")
        return result
    if min(good, len(rows) - good) < params.min_per_class:
        result.notes.append(f"labels too one-sided ({good} good, {len(rows) - good} bad; need {params.min_per_class} "
                            "of each): weights unchanged")
        return result

    support: dict[str, tuple[int, int]] = {}
    eligible: list[str] = []
    for name in sorted(current):
        applied = [r.scores[name] for r in rows if r.scores.get(name) is not None]
        objections = sum(1 for s in applied if s < params.objection_score)
        support[name] = (len(applied), objections)
        if objections < params.min_objections or len(applied) - objections < params.min_objections:
            result.notes.append(f"{name}: applied {len(applied)}x, objected {objections}x; need "
                                f"{params.min_objections} objections and passes: weight unchanged")
        else:
            eligible.append(name)
    if not eligible:
        return result

    features = [[_feature(r.scores.get(name)) for name in eligible] for r in rows]
    fit = logistic_fit(features, [r.good for r in rows], weights=[r.weight for r in rows], l2=params.l2)
    fitted = {name: (b, se) for name, b, se in zip(eligible, fit.coefficients, fit.std_errors, strict=True)}
    predictive = [n for n, (b, se) in fitted.items() if b - params.z * se > 0]
    useful = params.min_useful
    if predictive:
        useful = max(useful, params.min_useful_rel * sum(fitted[n][0] for n in predictive) / len(predictive))
    powerless = [n for n, (b, se) in fitted.items() if n not in predictive and b + params.z * se < useful]
    for name in eligible:
        if name not in predictive and name not in powerless:
            b, se = fitted[name]
            result.notes.append(f"{name}: coefficient {b:+.2f} +- {se:.2f} is inconclusive: weight unchanged")
    targets: dict[str, tuple[float, str]] = {}
    if predictive:
        mean_weight = sum(current[n] for n in predictive) / len(predictive)
        mean_beta = sum(fitted[n][0] for n in predictive) / len(predictive)
        for name in predictive:
            b, se = fitted[name]
            target = mean_weight * b / mean_beta
            targets[name] = (target, f"{name} predicts verdicts: coefficient {b:+.2f} +- {se:.2f} "
                                     f"(mean of the predictive ones {mean_beta:+.2f})")
    for name in powerless:
        b, se = fitted[name]
        targets[name] = (params.weight_min, f"{name} does not predict verdicts: coefficient {b:+.2f} +- {se:.2f} "
                                            f"(useful: {useful:.2f})")
    new_weights = dict(current)
    for name, (raw_target, why) in sorted(targets.items()):
        target = max(params.weight_min, min(params.weight_max, raw_target))
        if abs(target - current[name]) <= max(0.05, params.dead_band_rel * current[name]):
            continue
        new, capped = _bounded(current[name], target, params)
        new = round(new, 3)
        if abs(new - current[name]) < 0.01:
            continue
        new_weights[name] = new
        n_applied, n_objections = support[name]
        reason = f"{why}; target weight {target:.2f}" + (", step capped" if capped else "")
        result.changes.append(Change(f"weights.{name}", current[name], new, reason,
                                     {"labelled": len(rows), "applied": n_applied, "objections": n_objections}))
    result.values = {"weights": new_weights}
    if not result.changes:
        result.notes.append("weights stay: " + _fmt({n: b for n, (b, _) in fitted.items()}))
    return result


def _feature(score: float | None) -> float:
    return 1.0 if score is None else max(0.0, min(10.0, float(score))) / 10.0


def _fmt(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:+.2f}" for k, v in values.items())
