"""Simulate the learning loop on a synthetic workload: cost and quality per day against baselines.

    python scripts/bench_learning.py [--days 5] [--per-day 8000] [--start large|defaults] [--seed 7]

A benchmark, not a test: no gateway, no database. Each simulated request picks a tier the way
`plugins.tiering` does (assignment, exploration share one tier cheaper), runs the cascade the way
`plugins.cascade` does (score with validators combined by the real `plugins.validators.confidence
.combine`, escalate below 5, at most 2 escalations, keep the best-scoring answer), is gated with
the current thresholds, and lands in the review queue when `pending_review` (all reviewed) or
spot-checked (4 % of `warning`/`approved`). Reviewers judge by the ground truth.

Ground truth: each task type has a probability that a tier's answer is good, and each tier a
cost per call. Validators see bad answers with a per-validator detection rate (partial signals
included) and raise false alarms on good ones; `length` is deliberately noisy (it fires on a
quarter of all answers), so the weights cycle has something to find.

The learner runs the real pure cycles on the trailing window of simulated audit rows:
validators every 6 h (24 h window), thresholds every 12 h (24 h window, drift clamp against the
state 24 h earlier), assignments every 24 h (48 h window). Baselines run the same workload with
fixed assignments: always-large, always-fast, and the oracle (per task type, the cheapest start
tier whose simulated quality is at least 95 % of always-large's, known from the ground truth).

The bar: after at most 3 assignment cycles, >= 60 % lower cost than always-large at >= 95 % of
its quality, with <= 5 % of `approved` answers wrong.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learning.config import LearningConfig
from learning.cycles import assignments_cycle, thresholds_cycle, validators_cycle
from learning.types import AuditSample, Review, Step, ThresholdPoint
from plugins.tasks import BUILTIN
from plugins.validators.base import ValidatorResult
from plugins.validators.confidence import combine
from plugins.validators.registry import default_validators

TIERS = ["fast", "medium", "large", "external"]
COST = {"fast": 0.2, "medium": 0.6, "large": 2.0, "external": 3.0}  # per call, arbitrary units
ESCALATE_BELOW = 5.0
MAX_ESCALATIONS = 2
SPOT_CHECK = 0.04

# task type: (traffic share, P(good answer) on fast, medium, large, external)
TASKS: dict[str, tuple[float, tuple[float, float, float, float]]] = {
    "classification": (0.15, (0.95, 0.97, 0.98, 0.98)),
    "summarization": (0.12, (0.92, 0.96, 0.97, 0.98)),
    "translation": (0.08, (0.90, 0.95, 0.97, 0.98)),
    "extraction": (0.10, (0.86, 0.94, 0.97, 0.97)),
    "chat": (0.15, (0.91, 0.95, 0.97, 0.97)),
    "code_explanation": (0.10, (0.84, 0.93, 0.96, 0.97)),
    "code_generation": (0.12, (0.60, 0.84, 0.95, 0.96)),
    "code_review": (0.08, (0.55, 0.80, 0.94, 0.95)),
    "analysis": (0.05, (0.62, 0.86, 0.95, 0.96)),
    "agentic": (0.05, (0.40, 0.70, 0.93, 0.95)),
}
CODE = {"code_generation", "code_review", "code_explanation", "agentic"}


@dataclass(frozen=True)
class SimValidator:
    name: str
    detect: float  # P(flags a bad answer)
    false_alarm: float  # P(flags a good answer)
    applies: frozenset[str] | None = None  # task types (None: all)


VALIDATORS = [
    SimValidator("non_empty", 0.15, 0.002),
    SimValidator("refusal", 0.20, 0.01),
    SimValidator("truncation", 0.20, 0.01),
    SimValidator("language", 0.10, 0.01),
    SimValidator("repetition", 0.15, 0.01),
    SimValidator("length", 0.25, 0.25),  # noise: fires on a quarter of all answers, good or bad
    SimValidator("code_syntax", 0.55, 0.02, frozenset(CODE)),
    SimValidator("json_mode", 0.50, 0.02, frozenset({"extraction"})),
    SimValidator("classification", 0.60, 0.02, frozenset({"classification"})),
    SimValidator("summarization", 0.40, 0.03, frozenset({"summarization"})),
]
DEFAULT_WEIGHTS = {v.name: float(v.default_weight) for v in default_validators()}


@dataclass
class State:
    assignments: dict[str, str]
    exploration: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    review: float = 4.0
    approved: float = 7.0


@dataclass
class DayStats:
    n: int = 0
    cost: float = 0.0
    good: int = 0
    approved: int = 0
    approved_wrong: int = 0
    escalations: int = 0
    pending: int = 0

    def add(self, cost: float, good: bool, status: str, escalations: int) -> None:
        self.n += 1
        self.cost += cost
        self.good += good
        self.escalations += escalations
        self.pending += status == "pending_review"
        if status == "approved":
            self.approved += 1
            self.approved_wrong += not good

    @property
    def cost_per_call(self) -> float:
        return self.cost / max(1, self.n)

    @property
    def quality(self) -> float:
        return self.good / max(1, self.n)

    @property
    def wrong_approved(self) -> float:
        return self.approved_wrong / max(1, self.approved)


def score(rng: random.Random, task: str, good: bool) -> list[ValidatorResult]:
    results = []
    for v in VALIDATORS:
        if v.applies is not None and task not in v.applies:
            continue
        if good:
            s = rng.uniform(2.0, 6.0) if rng.random() < v.false_alarm else rng.uniform(8.5, 10.0)
        else:
            roll = rng.random()
            if roll < v.detect:
                s = rng.uniform(0.0, 3.5)
            elif roll < v.detect * 1.6:
                s = rng.uniform(4.0, 7.5)  # a partial signal
            else:
                s = rng.uniform(7.5, 10.0)
        results.append(ValidatorResult.of(v.name, round(s, 1), "sim"))
    return results


def simulate_call(rng: random.Random, task: str, start: str, state: State, when: datetime, ident: int,
                  stats: DayStats) -> AuditSample:
    p_good = TASKS[task][1]
    tier = start
    steps: list[Step] = []
    best: tuple[float, bool, dict[str, float], str] | None = None
    escalations = 0
    while True:
        good = rng.random() < p_good[TIERS.index(tier)]
        results = score(rng, task, good)
        confidence = combine(results, state.weights)
        scores = {r.name: r.score for r in results}
        steps.append(Step(tier, confidence, COST[tier], None, scores))
        if best is None or confidence > best[0]:
            best = (confidence, good, scores, tier)
        if confidence >= ESCALATE_BELOW or escalations >= MAX_ESCALATIONS or tier == TIERS[-1]:
            break
        tier = TIERS[TIERS.index(tier) + 1]
        escalations += 1
    confidence, good, scores, final_tier = best
    status = ("approved" if confidence >= state.approved
              else "warning" if confidence >= state.review else "pending_review")
    review = None
    if status == "pending_review" or rng.random() < SPOT_CHECK:
        if good:
            review = Review("approved") if rng.random() < 0.9 else Review("corrected", rng.choice([7.0, 8.0, 9.0]))
        else:
            review = Review("rejected") if rng.random() < 0.8 else Review("corrected", rng.choice([2.0, 3.0, 5.0]))
    cost = sum(s.cost for s in steps)
    stats.add(cost, good, status, escalations)
    return AuditSample(ident, when, task, final_tier, status, confidence, escalations, cost, tuple(steps), scores,
                       review)


def run_day(rng: random.Random, state: State, day: int, per_day: int, stats: DayStats, t0: datetime,
            ident: int, hours: tuple[int, int] = (0, 24)) -> list[AuditSample]:
    names = list(TASKS)
    shares = [TASKS[n][0] for n in names]
    out = []
    start_h, end_h = hours
    n = per_day * (end_h - start_h) // 24
    for i in range(n):
        when = t0 + timedelta(days=day, hours=start_h + (end_h - start_h) * i / n)
        task = rng.choices(names, shares)[0]
        tier = state.assignments[task]
        share = state.exploration.get(task, 0.0)
        if share and TIERS.index(tier) > 0 and rng.random() < share:
            tier = TIERS[TIERS.index(tier) - 1]
        out.append(simulate_call(rng, task, tier, state, when, ident + i, stats))
    return out


def fixed_run(assignments: Mapping[str, str], days: int, per_day: int, seed: int) -> DayStats:
    rng = random.Random(seed)
    state = State(dict(assignments))
    stats = DayStats()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(days):
        run_day(rng, state, day, per_day, stats, t0, day * per_day)
    return stats


def oracle(per_task_n: int, seed: int, ratio: float = 0.95) -> dict[str, str]:
    """Per task type the cheapest start tier whose simulated quality is >= ratio x large's."""
    rng = random.Random(seed)
    state = State({t: "large" for t in TASKS})
    when = datetime(2026, 1, 1, tzinfo=UTC)
    choice = {}
    for task in TASKS:
        quality = {}
        for tier in TIERS:
            stats = DayStats()
            for i in range(per_task_n):
                simulate_call(rng, task, tier, state, when, i, stats)
            quality[tier] = stats.quality
        choice[task] = next(t for t in TIERS if quality[t] >= ratio * quality["large"])
    return choice


def learn(days: int, per_day: int, seed: int, start: str, config: LearningConfig,
          explore_from_start: bool) -> list[tuple[DayStats, State, list[str]]]:
    rng = random.Random(seed)
    state = State({t: "large" if start == "large" else BUILTIN[t].tier for t in TASKS})
    if explore_from_start:
        state.exploration = {t: config.explore_share for t, tier in state.assignments.items() if tier != TIERS[0]}
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    history: list[ThresholdPoint] = [ThresholdPoint(datetime.min.replace(tzinfo=UTC), state.review, state.approved)]
    rows: list[AuditSample] = []
    out = []
    vp, tp, ap = config.validator_params(), config.threshold_params(), config.assignment_params()
    keep = timedelta(hours=max(config.validators_window_h, config.thresholds_window_h, config.assignments_window_h))

    def window(now: datetime, cycle: str) -> list[AuditSample]:
        since = now - timedelta(hours=config.window_h(cycle))
        return [r for r in rows if r.created_at >= since]

    for day in range(days):
        stats = DayStats()
        log: list[str] = []
        for quarter in range(4):
            hours = (quarter * 6, quarter * 6 + 6)
            rows.extend(run_day(rng, state, day, per_day, stats, t0, len(rows), hours))
            now = t0 + timedelta(days=day, hours=hours[1])
            result = validators_cycle(state.weights, window(now, "validators"), vp)
            if result.changed:
                state.weights = dict(result.values["weights"])
                log.append(f"{now:%d %Hh} weights: " + ", ".join(f"{c.key[8:]} {c.old:.2f}->{c.new:.2f}"
                                                                  for c in result.changes))
            if quarter % 2 == 1:
                result = thresholds_cycle(state.review, state.approved, window(now, "thresholds"), history, now, tp)
                if result.changed:
                    state.review = result.values["thresholds"]["review"]
                    state.approved = result.values["thresholds"]["approved"]
                    history.append(ThresholdPoint(now, state.review, state.approved))
                    log.append(f"{now:%d %Hh} thresholds: review {state.review:.2f}, approved {state.approved:.2f}"
                               + (" (clamped)" if result.clamped else ""))
        now = t0 + timedelta(days=day + 1)
        result = assignments_cycle(state.assignments, state.exploration, window(now, "assignments"), TIERS, ap)
        state.assignments = dict(result.values["assignments"])
        state.exploration = dict(result.values["exploration"])
        moves = [c for c in result.changes if c.key.startswith("assignments.")]
        if moves:
            log.append(f"{now:%d %Hh} assignments: " + ", ".join(f"{c.key[12:]} {c.old}->{c.new}" for c in moves))
        out.append((stats, State(dict(state.assignments), dict(state.exploration), dict(state.weights),
                                 state.review, state.approved), log))
        rows = [r for r in rows if r.created_at >= now - keep]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--per-day", type=int, default=8000)
    parser.add_argument("--start", choices=["large", "defaults"], default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explore-from-start", action="store_true",
                        help="the initial state already explores one tier down (else the first cycle starts it)")
    parser.add_argument("--verbose", action="store_true", help="print every change the cycles made")
    args = parser.parse_args(argv)

    base_days = 2
    large = fixed_run({t: "large" for t in TASKS}, base_days, args.per_day, args.seed + 1)
    fast = fixed_run({t: "fast" for t in TASKS}, base_days, args.per_day, args.seed + 2)
    best = oracle(3000, args.seed + 3)
    oracle_stats = fixed_run(best, base_days, args.per_day, args.seed + 4)

    def row(label: str, s: DayStats) -> str:
        saving = 1 - s.cost_per_call / large.cost_per_call
        return (f"{label:<22} {s.cost_per_call:>7.3f} {saving:>8.1%} {s.quality:>8.1%} "
                f"{s.quality / large.quality:>8.1%} {s.wrong_approved:>9.1%} {s.escalations / s.n:>7.1%} "
                f"{s.pending / s.n:>8.1%}")

    print(f"workload: {len(TASKS)} task types, {args.per_day} calls/day, seed {args.seed}, learner starts from "
          f"{args.start}\n")
    header = (f"{'policy':<22} {'cost':>7} {'saving':>8} {'quality':>8} {'vs large':>8} {'appr.wrong':>9} "
              f"{'escal.':>7} {'pending':>8}")
    print(header)
    print("-" * len(header))
    print(row("always-large", large))
    print(row("always-fast", fast))
    print(row("oracle", oracle_stats))
    results = learn(args.days, args.per_day, args.seed, args.start, LearningConfig(), args.explore_from_start)
    passed_at = None
    for day, (stats, _state, _log) in enumerate(results):
        print(row(f"learner day {day + 1} ({day} cyc)", stats))
        ok = (1 - stats.cost_per_call / large.cost_per_call >= 0.60 and stats.quality >= 0.95 * large.quality
              and stats.wrong_approved <= 0.05)
        if ok and passed_at is None:
            passed_at = day
    print()
    final = results[-1][1]
    print("oracle assignment:  " + ", ".join(f"{t}={best[t]}" for t in TASKS))
    print("learned assignment: " + ", ".join(f"{t}={final.assignments[t]}" for t in TASKS))
    print(f"learned thresholds: review {final.review:.2f}, approved {final.approved:.2f}")
    print("learned weights:    " + ", ".join(f"{k}={v:.2f}" for k, v in sorted(final.weights.items())
                                             if k in {v.name for v in VALIDATORS}))
    if args.verbose:
        for day, (_s, _st, log) in enumerate(results):
            for line in log:
                print(f"  day {day + 1}: {line}")
    verdict = (f"PASS: bar met on day {passed_at + 1}, after {passed_at} assignment cycle(s)"
               if passed_at is not None and passed_at <= 3 else "FAIL: bar not met within 3 assignment cycles")
    print("\n" + verdict)
    return 0 if passed_at is not None and passed_at <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
