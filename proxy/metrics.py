"""Prometheus metrics, one registry per app (never the global one).

Counters and histograms are fed from the audit record of each call (so what is counted and what
is audited cannot disagree); gauges that describe state (queues, thresholds, degraded flags) are
read when Prometheus scrapes. Every label value comes from config or a closed set (tier, task
type, deployment, validator, status, route), never from request content.

Rates the alert rules need:
    fallback rate  = rate(llm_gateway_fallbacks_total) / rate(llm_gateway_requests_total)
    latency        = llm_gateway_request_duration_seconds (by route, tier, status)
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from core.records import AuditRecord

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
CONFIDENCE_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, known_task_types: set[str] | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.known_task_types = known_task_types or set()
        r = self.registry
        p = "llm_gateway_"
        self.requests = Counter(p + "requests_total", "Calls through the pipeline", ["route", "tier", "status"],
                                registry=r)
        self.duration = Histogram(p + "request_duration_seconds", "Whole call latency", ["route", "tier", "status"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram(p + "overhead_seconds", "Gateway time excluding upstream waits, until headers",
                                  ["route"], buckets=OVERHEAD_BUCKETS, registry=r)
        self.ttft = Histogram(p + "time_to_first_token_seconds", "Streams: time to the first chunk", ["tier"],
                              buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter(p + "tokens_total", "Tokens by direction", ["tier", "direction"], registry=r)
        self.cost = Counter(p + "cost_total", "Cost in the configured currency", ["tier"], registry=r)
        self.confidence = Histogram(p + "confidence", "Answer confidence 0-10", ["task_type", "tier"],
                                    buckets=CONFIDENCE_BUCKETS, registry=r)
        self.verdicts = Counter(p + "gate_verdicts_total", "Gate verdicts", ["status"], registry=r)
        self.escalations = Counter(p + "escalations_total", "Cascade escalations", ["from_tier", "to_tier"],
                                   registry=r)
        self.attempts = Counter(p + "provider_attempts_total", "Upstream attempts", ["deployment", "outcome"],
                                registry=r)
        self.failures = Counter(p + "provider_failures_total", "Failed upstream attempts", ["deployment"],
                                registry=r)
        self.fallbacks = Counter(p + "fallbacks_total", "Calls served after at least one failed attempt",
                                 ["tier"], registry=r)
        self.cooldowns = Counter(p + "cooldowns_total", "Deployments rate limited (cooled down)", ["deployment"],
                                 registry=r)
        self.validation_failures = Counter(p + "validation_failures_total", "Answers a validator failed",
                                           ["validator"], registry=r)
        self.check_seconds = Histogram(p + "validator_check_seconds", "Time of checks run off the event loop "
                                       "(code execution in the sandbox)", ["validator"],
                                       buckets=(*OVERHEAD_BUCKETS, 0.5, 1, 2, 5), registry=r)
        self.review_queue = Gauge(p + "review_queue_depth", "Items pending human review", registry=r)
        self.review_oldest = Gauge(p + "review_queue_oldest_age_seconds", "Age of the oldest pending item",
                                   registry=r)
        self.audit_queue = Gauge(p + "audit_queue_depth", "Audit records in memory", registry=r)
        self.audit_spool = Gauge(p + "audit_spool_depth", "Audit records in the durable spool", registry=r)
        self.degraded = Gauge(p + "dependency_degraded", "1 while a dependency is down", ["dependency"],
                              registry=r)
        self.threshold = Gauge(p + "gate_threshold", "Current gate thresholds", ["band"], registry=r)
        self.threshold_drift = Gauge(p + "gate_threshold_drift_24h", "Threshold change over the last 24 h",
                                     ["band"], registry=r)
        self.threshold_clamped = Gauge(p + "gate_threshold_clamped", "1 when the last thresholds cycle was clamped",
                                       registry=r)
        self.learned_version = Gauge(p + "learned_state_version", "Active learned state version", registry=r)
        self.cycle_runs = Counter(p + "learning_cycle_runs_total", "Learning cycles seen", ["cycle"], registry=r)
        self.cycle_last_success = Gauge(p + "learning_cycle_last_success_timestamp_seconds",
                                        "When each learning cycle last produced a state", ["cycle"], registry=r)
        self.up_since = Gauge(p + "start_time_seconds", "Process start time", registry=r)
        self.up_since.set(time.time())

    def task_label(self, task_type: str | None) -> str:
        return task_type if task_type in self.known_task_types else "other"

    def observe(self, record: AuditRecord) -> None:
        """Count one finished call (called with its audit record)."""
        tier = record.tier or "none"
        status = record.status
        self.requests.labels(record.route, tier, status).inc()
        self.duration.labels(record.route, tier, status).observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            self.ttft.labels(tier).observe(record.ttft_ms / 1000)
        if record.tokens_in:
            self.tokens.labels(tier, "in").inc(record.tokens_in)
        if record.tokens_out:
            self.tokens.labels(tier, "out").inc(record.tokens_out)
        if record.cost:
            self.cost.labels(tier).inc(record.cost)
        if record.confidence is not None:
            self.confidence.labels(self.task_label(record.task_type), tier).observe(record.confidence)
        if status != "error":
            self.verdicts.labels(status).inc()
        for step in record.steps:
            for name, ms in (step.get("checks_ms") or {}).items():
                self.check_seconds.labels(name).observe(ms / 1000)
        steps = [s.get("tier") for s in record.steps]
        for before, after in pairwise(steps):
            self.escalations.labels(before or "none", after or "none").inc()
        failed = False
        for attempt in record.attempts:
            deployment = attempt.get("deployment") or "unknown"
            outcome = attempt.get("outcome") or "unknown"
            self.attempts.labels(deployment, "ok" if outcome == "ok" else "error").inc()
            if outcome != "ok":
                failed = True
                self.failures.labels(deployment).inc()
                if "RateLimit" in outcome:
                    self.cooldowns.labels(deployment).inc()
        if failed and status != "error":
            self.fallbacks.labels(tier).inc()
        for name, score in record.validator_scores.items():
            if score < 5:
                self.validation_failures.labels(name).inc()

    def observe_overhead(self, route: str, seconds: float) -> None:
        self.overhead.labels(route).observe(seconds)

    def refresh(self, gateway: Any, review: dict[str, Any] | None = None) -> None:
        """Read the state gauges (called at scrape time)."""
        sink = gateway.sink
        if sink is not None:
            self.audit_queue.set(sink.queue_depth)
            self.audit_spool.set(sink.spool_depth)
        self.degraded.labels("redis").set(1 if gateway.redis is not None and gateway.redis.state != "ok" else 0)
        db_ok = gateway.db_ready and (sink is None or sink.db_ok)
        self.degraded.labels("database").set(0 if db_ok else 1)
        state = gateway.state.current
        self.threshold.labels("review").set(state.thresholds.review)
        self.threshold.labels("approved").set(state.thresholds.approved)
        self.learned_version.set(state.version)
        poller = getattr(gateway, "poller", None)
        if poller is not None:
            for cycle, at in poller.runs.items():
                self.cycle_last_success.labels(cycle).set(at.timestamp())
            self.threshold_clamped.set(1 if poller.clamped else 0)
        if review:
            self.review_queue.set(review.get("pending_review", 0))
            self.review_oldest.set(review.get("oldest_age_s", 0) or 0)
